"""A Recording from `kubectl apply` to UPLOADED: pause, resume, stop, RBAC, decoded outputs."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.kubeclient import api_client
from tapedeck_dev.storage_servers import SeaweedFS
from tests.janus.conftest import Meeting
from tests.media_probe import RATE, audio_samples, tone_levels
from tests.operator.conftest import (
    STORAGE_SECRET,
    Cluster,
    Operator,
    recording_manifest,
    storage_spec,
    utc,
)
from tests.storage.media import playable_seconds
from tests.waiting import eventually


def _as_bot(cluster: Cluster, kubeconfig: Path, service_account: str) -> client.ApiClient:
    """A client holding a token of the bot's own ServiceAccount, and no other credentials."""
    token = cluster.run("create", "token", service_account).strip()
    admin = api_client(kubeconfig).configuration
    configuration = client.Configuration(host=admin.host)
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.api_key = {"BearerToken": token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(configuration)


def _answer(call: Any, *args: Any) -> int:
    try:
        call(*args, _preload_content=False)
    except ApiException as exc:
        return int(exc.status or 0)
    return 200


def _check_bot_rbac(cluster: Cluster, kubeconfig: Path, name: str) -> None:
    api = _as_bot(cluster, kubeconfig, f"{name}-bot")
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    where = ("tapedeck.dev", "v1alpha1", cluster.namespace, "recordings")
    assert _answer(custom.get_namespaced_custom_object, *where, name) == 200
    assert _answer(custom.get_namespaced_custom_object, *where, "other") == 403
    assert _answer(core.read_namespaced_secret, STORAGE_SECRET, cluster.namespace) == 200
    assert _answer(core.read_namespaced_secret, "unrelated", cluster.namespace) == 403
    assert _answer(core.list_namespaced_pod, cluster.namespace) == 403


def _download(store: ObjectStore, key: str, path: Path) -> Path:
    path.write_bytes(b"".join(store.read(key, 1 << 20)))
    return path


def test_apply_pause_resume_stop_reaches_uploaded_with_decodable_outputs(
    cluster: Cluster,
    operator: Operator,
    janus: JanusServer,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    alice, bob = meeting.join(0), meeting.join(1)
    cluster.run("create", "secret", "generic", "unrelated", "--from-literal=k=v")
    # Another Recording in the namespace, which the bot must not be able to read.
    cluster.apply(
        recording_manifest("other", "other-meeting", janus.http_url, meeting.room, state="Stopped")
    )
    cluster.apply(
        recording_manifest(
            "standup",
            "standup-1",
            janus.http_url,
            meeting.room,
            composite={"video": {"codec": "VP8", "width": 640, "height": 360}},
            tracks={"enabled": True},
            storage=storage_spec(seaweed, bucket, cluster.namespace),
        )
    )
    status = cluster.wait_phase("standup", "RECORDING", timeout=60)

    def listed() -> dict[str, Any] | None:
        status = cluster.status("standup")
        names = {p["userId"] for p in status.get("participants") or []}
        return status if {alice.name, bob.name} <= names else None

    status = eventually(listed, timeout=30, what="both participants in the status")
    started = utc(status["startedAt"])
    _check_bot_rbac(cluster, kubeconfig, "standup")

    time.sleep(max(0.0, started + 6 - time.time()))
    cluster.set_state("standup", "Paused")
    paused = cluster.wait_phase("standup", "PAUSED", timeout=30)
    time.sleep(6)
    cluster.set_state("standup", "Recording")
    cluster.wait_phase("standup", "RECORDING", timeout=30)
    time.sleep(6)
    cluster.set_state("standup", "Stopped")
    subprocess.run(
        [*cluster.kubectl, "-n", cluster.namespace, "wait", "--for=condition=Ready",
         "recording/standup", "--timeout=120s"],
        check=True, capture_output=True, timeout=150,
    )  # fmt: skip

    status = cluster.status("standup")
    assert status["phase"] == "UPLOADED"
    assert status["stopReason"] == "STOPPED"
    phases = [h["phase"] for h in status["history"]]
    assert phases == ["INVOKED", "RECORDING", "PAUSED", "RECORDING", "UPLOADING", "UPLOADED"]
    times = [utc(h["at"]) for h in status["history"]]
    assert times == sorted(times)
    generation = cluster.get("recording", "standup")["metadata"]["generation"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert {c["observedGeneration"] for c in conditions.values()} == {generation}

    outputs = status["outputs"]
    composites = [o for o in outputs if o["kind"] == "composite"]
    tracks = {o["userId"]: o for o in outputs if o["kind"] == "track"}
    assert len(composites) == 1
    assert set(tracks) == {alice.name, bob.name}
    assert all(o["complete"] for o in outputs)
    keys = {info.key for info in bucket.list_objects(f"{cluster.namespace}/")}
    assert {o["key"] for o in outputs} <= keys

    composite = _download(bucket, composites[0]["key"], tmp_path / "composite.webm")
    video_s, audio_s = playable_seconds(composite)
    pause_s = utc(status["history"][3]["at"]) - utc(paused["history"][2]["at"])
    wall_s = utc(status["stoppedAt"]) - started
    assert pause_s > 4
    # The paused span is cut: the file is about the recorded time, not the wall time.
    assert abs(video_s - status["durationSeconds"]) < 2.5
    assert video_s < wall_s - pause_s + 2.5
    assert audio_s > 10
    samples = audio_samples(composite)
    levels = tone_levels(samples[RATE:], [alice.freq, bob.freq])
    assert min(levels.values()) > -20  # both voices are in the mix

    alice_file = _download(bucket, tracks[alice.name]["key"], tmp_path / "alice.webm")
    levels = tone_levels(audio_samples(alice_file)[RATE:], [alice.freq, bob.freq])
    assert levels[alice.freq] > -6
    assert levels[bob.freq] < -30

    events = cluster.run("get", "events", "--field-selector", "involvedObject.name=standup")
    for reason in ("Invoked", "BotStarting", "Recording", "Paused", "Uploaded"):
        assert reason in events, events
    columns = cluster.run("get", "rec", "standup")
    assert "UPLOADED" in columns
    metrics = operator.metrics()
    assert 'tapedeck_recordings{phase="UPLOADED"}' in metrics
    assert "tapedeck_bot_attempts_total" in metrics
