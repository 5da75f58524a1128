"""A Recording from `kubectl apply` to UPLOADED and after: pause, resume, stop, RBAC, decoded
outputs, signed webhooks, download URLs, transfers, and retention once it is deleted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import posixpath
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tapedeck_bot.storage import ObjectStore
from tapedeck_bot.storage.s3 import S3Store
from tapedeck_dev.cluster import free_port
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.kubeclient import api_client
from tapedeck_dev.stack import OPERATOR_NAMESPACE
from tapedeck_dev.storage_servers import SeaweedFS
from tapedeck_dev.webhook_receiver import Receiver, new_secret, verified
from tapedeck_operator.sweep import sweep
from tests.gitops_health import health
from tests.image_host import ImageHost
from tests.janus.conftest import Meeting
from tests.media_probe import RATE, audio_samples, frames_at, region_colour, tone_levels
from tests.operator.conftest import (
    STORAGE_SECRET,
    Cluster,
    Operator,
    in_process_api,
    recording_manifest,
    storage_spec,
    utc,
)
from tests.storage.http import get, refused
from tests.storage.media import playable_seconds
from tests.storage_fixtures import seaweed_store
from tests.waiting import eventually
from tests.watermarks import BLUE, logo_png
from tests.webhook_schema import validate_status_update


def _health(cluster: Cluster, name: str) -> tuple[str, str]:
    verdict = health(cluster.kubectl, cluster.namespace, "recording", name)
    return verdict.kstatus.status, verdict.argocd.status


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
    receiver: Receiver,
    webhook_secret: str,
    kubeconfig: Path,
    images: ImageHost,
    tmp_path: Path,
) -> None:
    alice, bob = meeting.join(0), meeting.join(1)
    images.files["/brand/logo.png"] = logo_png(120, 60)
    # Secrets rotating: both sign every event, and a receiver with either one verifies it.
    previous = new_secret()
    cluster.run(
        "create", "secret", "generic", "rotating", f"--from-literal=key={webhook_secret} {previous}"
    )
    copies = seaweed_store(seaweed)
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
            composite={
                "video": {"codec": "VP8", "width": 640, "height": 360},
                "watermark": {
                    "url": images.url("/brand/logo.png"),
                    "size": {"height": 40},
                    "position": "left bottom",
                },
            },
            tracks={"enabled": True},
            storage=storage_spec(seaweed, bucket, cluster.namespace),
            webhooks=[
                {"url": receiver.url("/events"), "secretRef": {"name": "rotating", "key": "key"}}
            ],
            transfers=[
                storage_spec(seaweed, copies, "copies"),
                {**storage_spec(seaweed, copies, "nowhere"), "endpoint": _closed_endpoint()},
            ],
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
    # GitOps health while it records: kstatus (Flux, kpt) InProgress, our Argo CD script
    # Progressing; Suspended while paused; Current and Healthy once uploaded.
    assert _health(cluster, "standup") == ("InProgress", "Progressing")

    time.sleep(max(0.0, started + 6 - time.time()))
    cluster.set_state("standup", "Paused")
    paused = cluster.wait_phase("standup", "PAUSED", timeout=30)
    assert _health(cluster, "standup") == ("InProgress", "Suspended")
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
    assert _health(cluster, "standup") == ("Current", "Healthy")

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
    _check_watermark(cluster, images, composite, "standup", [1.0, video_s - 1.0])

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

    uid = cluster.get("recording", "standup")["metadata"]["uid"]
    _check_webhooks(receiver, [webhook_secret, previous], uid, status)
    _check_cluster_wide_webhooks(operator, uid, status)
    _check_downloads(cluster, bucket, "standup")
    _check_transfers(cluster, bucket, copies, receiver, webhook_secret, uid, "standup")
    _check_deleted_recording_expires(cluster, bucket, kubeconfig, uid, "standup")
    copies.close()


def _check_watermark(
    cluster: Cluster, images: ImageHost, composite: Path, name: str, moments: list[float]
) -> None:
    """Fetched once into a ConfigMap the Recording owns; in the file, 80x40 (its aspect kept)
    at the left bottom, 10 px in, over the black below the two tiles (whose 16:9 pictures
    end at y 270): blue where opaque, a half-white blend where half transparent, the same
    at the start and at the end (blended anew each frame, never over the last)."""
    assert images.gets["/brand/logo.png"] == 1
    recording = cluster.get("recording", name)
    uid = recording["metadata"]["uid"]
    config_maps = json.loads(cluster.run("get", "configmaps", "-o", "json"))["items"]
    (config_map,) = [c for c in config_maps if c["metadata"]["name"].startswith(f"{name}-water")]
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == uid
    assert config_map["immutable"] is True
    frames = frames_at(composite, moments)
    x, y = 10, 360 - 10 - 40
    for image in frames.values():
        blue = region_colour(image, x, y, 26, 40)
        half = region_colour(image, x + 30, y, 50, 40)
        assert np.abs(blue - BLUE).max() < 40, blue
        assert np.abs(half - 128).max() < 30, half  # half of white over black, not white
        assert np.abs(region_colour(image, x + 100, y, 60, 40)).max() < 20  # beside it, black


def _closed_endpoint() -> str:
    """A loopback port nobody listens on: a destination that is down."""
    return f"http://127.0.0.1:{free_port()}"


def _check_webhooks(
    receiver: Receiver, secrets: list[str], uid: str, status: dict[str, Any]
) -> None:
    """One signed recording.statusUpdate per transition, in order, each as RealtimeKit shapes
    it; the UPLOADED one carries the download URLs."""

    def all_arrived() -> list[dict[str, Any]] | None:
        payloads = [verified(r, secrets[0]) for r in receiver.requests("/events")]
        updates = [p for p in payloads if p["event"] == "recording.statusUpdate"]
        return updates if len(updates) >= len(status["history"]) else None

    updates = eventually(all_arrived, timeout=30, what="a webhook per transition")
    assert [u["recording"]["status"] for u in updates] == [
        "INVOKED", "RECORDING", "PAUSED", "RECORDING", "UPLOADING", "UPLOADED",
    ]  # fmt: skip
    for update in updates:
        validate_status_update(update)
        assert update["recording"]["id"] == update["recording"]["recordingId"] == uid
        assert update["meeting"]["id"] == update["recording"]["meetingId"] == "standup-1"
    for request in receiver.requests("/events"):
        assert verified(request, secrets[1]) == request.payload()  # the old secret works too
    ids = [r.id for r in receiver.requests("/events")]
    assert len(set(ids)) == len(ids)  # each event once: every answer was a 200
    assert all(len(r.headers["webhook-signature"].split()) == 2 for r in receiver.requests())
    uploading, uploaded = updates[-2]["recording"], updates[-1]["recording"]
    assert uploading["stopReason"] == "STOPPED"
    assert "downloadUrl" not in uploading
    assert uploaded["outputFileName"] == posixpath.basename(
        next(o["key"] for o in status["outputs"] if o["kind"] == "composite")
    )
    assert get(uploaded["downloadUrl"])[:4] == b"\x1a\x45\xdf\xa3"  # a WebM (EBML) file
    tracks = [o for o in uploaded["outputs"] if o["kind"] == "track"]
    assert len(tracks) == 2
    assert all(get(t["downloadUrl"])[:4] == b"\x1a\x45\xdf\xa3" for t in tracks)


def _check_cluster_wide_webhooks(operator: Operator, uid: str, status: dict[str, Any]) -> None:
    """The operator's own endpoint (its settings) gets the same events, with its own secret."""

    def arrived() -> list[str] | None:
        payloads = [verified(r, operator.hooks_secret) for r in operator.hooks.requests("/all")]
        phases = [
            p["recording"]["status"]
            for p in payloads
            if p["event"] == "recording.statusUpdate" and p["recording"]["id"] == uid
        ]
        return phases if len(phases) >= len(status["history"]) else None

    phases = eventually(arrived, timeout=30, what="the events at the cluster-wide endpoint")
    assert phases == [h["phase"] for h in status["history"]]


def _check_downloads(cluster: Cluster, bucket: ObjectStore, name: str) -> None:
    """Every output has a URL that fetches its bytes; they are renewed before they expire,
    and an old one stops working at its own expiry."""
    status = cluster.status(name)
    for download in status["downloads"]:
        assert get(download["url"]) == b"".join(bucket.read(download["key"], 1 << 20))
    old_url, old_expiry = status["downloadUrl"], utc(status["downloadUrlExpiry"])

    def renewed() -> dict[str, Any] | None:
        fresh = cluster.status(name)
        return fresh if fresh["downloadUrl"] != old_url else None

    # The operator's test settings: 12 s URLs, renewed when 6 s are left.
    fresh = eventually(renewed, timeout=30, what="renewed download URLs")
    assert utc(fresh["downloadUrlExpiry"]) > old_expiry
    time.sleep(max(0.0, old_expiry + 1.5 - time.time()))
    composite = next(d for d in fresh["downloads"] if d["url"] == fresh["downloadUrl"])
    assert get(fresh["downloadUrl"]) == b"".join(bucket.read(composite["key"], 1 << 20))
    assert refused(old_url) == 403


def _check_transfers(
    cluster: Cluster,
    bucket: ObjectStore,
    copies: ObjectStore,
    receiver: Receiver,
    secret: str,
    uid: str,
    name: str,
) -> None:
    """The reachable destination gets byte-identical copies; the one that is down shows its
    error and attempts, and does not hold up the other or the recording."""

    def concluded() -> dict[str, Any] | None:
        status = cluster.status(name)
        states = [t["state"] for t in status.get("transfers") or []]
        return (
            status
            if len(states) == 2 and "Copying" not in states and "Pending" not in states
            else None
        )

    status = eventually(concluded, timeout=120, what="both transfers to conclude")
    done, down = status["transfers"]
    outputs = status["outputs"]
    assert (done["state"], done["attempts"]) == ("Succeeded", 1)
    assert done["objects"] == len(outputs)
    assert done["bytes"] == sum(o["bytes"] for o in outputs)
    source = f"{cluster.namespace}/{uid}/"
    for output in outputs:
        copied = f"copies/{uid}/" + output["key"].removeprefix(source)
        original = b"".join(bucket.read(output["key"], 1 << 20))
        assert b"".join(copies.read(copied, 1 << 20)) == original
    assert (down["state"], down["attempts"]) == ("Failed", 3)
    assert "127.0.0.1" in down["error"]
    assert "nowhere" in down["destination"]
    assert status["phase"] == "UPLOADED"
    events = cluster.run("get", "events", "--field-selector", "involvedObject.name=standup")
    assert "WebhookFailed" not in events

    def results() -> dict[int, dict[str, Any]] | None:
        payloads = [verified(r, secret) for r in receiver.requests("/events")]
        found = {
            p["transfer"]["index"]: p["transfer"]
            for p in payloads
            if p["event"] == "recording.transferUpdate"
        }
        return found if len(found) == 2 else None

    announced = eventually(results, timeout=30, what="a transferUpdate per destination")
    assert (announced[0]["state"], announced[0]["objects"]) == ("Succeeded", len(outputs))
    assert (announced[1]["state"], announced[1]["attempts"]) == ("Failed", 3)
    assert announced[1]["error"] == down["error"]


def _check_deleted_recording_expires(
    cluster: Cluster, bucket: ObjectStore, kubeconfig: Path, uid: str, name: str
) -> None:
    """A deleted Recording leaves a tombstone and a bucket rule; the sweep, on a clock past
    the retention period, deletes its objects and both."""
    assert isinstance(bucket, S3Store)
    prefix = f"{cluster.namespace}/{uid}/"
    cluster.run("delete", "recording", name, "--timeout=60s")
    tombstones = _tombstones(cluster)
    tombstone = json.loads(tombstones[uid])
    assert (tombstone["namespace"], tombstone["prefix"]) == (cluster.namespace, prefix)
    assert "secretAccessKey" not in tombstones[uid]
    # The backstop rule counts from each object's creation: 7 days from the end of a recording
    # that began minutes earlier is 8 whole days from then, never fewer.
    rule = next(r for r in bucket.lifecycle_rules() if r["Filter"]["Prefix"] == prefix)
    assert rule["Expiration"]["Days"] == 8
    assert bucket.list_objects(prefix)

    api = in_process_api(kubeconfig)
    due = dt.datetime.fromisoformat(tombstone["dueAt"])
    early = asyncio.run(sweep(api, OPERATOR_NAMESPACE, tombstones, due - dt.timedelta(hours=1)))
    assert early == []
    assert bucket.list_objects(prefix)
    assert asyncio.run(sweep(api, OPERATOR_NAMESPACE, tombstones, due)) == [uid]
    assert bucket.list_objects(prefix) == []
    assert all(r["Filter"]["Prefix"] != prefix for r in bucket.lifecycle_rules())
    assert uid not in _tombstones(cluster)


def _tombstones(cluster: Cluster) -> dict[str, str]:
    """The retention tombstones, in the operator's namespace."""
    out = cluster.run(
        "-n", OPERATOR_NAMESPACE, "get", "configmap", "tapedeck-retention", "-o", "json"
    )
    data: dict[str, str] = json.loads(out).get("data") or {}
    return data
