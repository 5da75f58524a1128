"""WHEP Recordings through the operator: the example manifest's shape against Pion's server,
paused, resumed, its server killed for 5 s, stopped; and refused endpoints ending ERRORED."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.storage_servers import SeaweedFS
from tests.conftest import REPO
from tests.media_probe import audio_samples, rms
from tests.operator.conftest import Cluster, Operator, stop_and_wait, storage_spec, utc
from tests.storage.media import playable_seconds
from tests.waiting import eventually
from tests.whep import conftest as whep_fixtures
from tests.whep.conftest import StreamFactory

whep_streams = whep_fixtures.whep_streams
TOKEN = "stage-token"
DOWN_S = 5.0
MARGIN_S = 1.0  # a loss is noticed after 2 s without frames; media restarts within ~1 s


def _example(endpoints: list[dict[str, Any]], storage: dict[str, Any]) -> dict[str, Any]:
    """examples/recording-webm-s3.yaml, pointed at the test's servers and bucket, 640x360."""
    manifest: dict[str, Any] = yaml.safe_load(
        (REPO / "examples/recording-webm-s3.yaml").read_text()
    )
    spec = manifest["spec"]
    spec["meeting"]["whep"]["endpoints"] = endpoints
    spec["composite"]["video"].update(width=640, height=360)
    spec["tracks"] = {"enabled": True}
    spec["storage"] = storage
    del spec["transfers"], spec["webhooks"]  # the lifecycle test covers those
    return manifest


def _download(bucket: ObjectStore, key: str, path: Path) -> Path:
    path.write_bytes(b"".join(bucket.read(key, 1 << 20)))
    return path


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def test_a_whep_recording_pauses_resumes_outlives_its_server_and_uploads(
    cluster: Cluster,
    operator: Operator,
    whep_streams: StreamFactory,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    tmp_path: Path,
) -> None:
    stage = whep_streams("red", 440.0, token=TOKEN)
    cluster.run("create", "secret", "generic", "sfu-token", f"--from-literal=token={TOKEN}")
    endpoint = {
        "url": stage.server.whep_url,
        "userId": "stage",
        "displayName": "Main stage",
        "tokenSecretRef": {"name": "sfu-token", "key": "token"},
    }
    cluster.apply(_example([endpoint], storage_spec(seaweed, bucket, cluster.namespace)))
    name = "all-hands"
    status = cluster.wait_phase(name, "RECORDING", timeout=60)
    started = utc(status["startedAt"])

    _sleep_until(started + 5)
    cluster.set_state(name, "Paused")
    cluster.wait_phase(name, "PAUSED", timeout=30)
    time.sleep(2)
    cluster.set_state(name, "Recording")
    cluster.wait_phase(name, "RECORDING", timeout=30)
    time.sleep(3)

    # The server goes away for 5 s; it comes back, and its publisher with it.
    stage.stop_publishing()
    stage.server.down()
    killed = time.time()
    time.sleep(DOWN_S)
    stage.server.up()
    stage.publish()

    def restored() -> dict[str, Any] | None:
        (participant,) = cluster.status(name).get("participants") or [{}]
        gaps = participant.get("gaps") or []
        return participant if gaps and gaps[-1].get("endedAt") else None

    participant = eventually(restored, timeout=60, what="the stream restored in the status")
    time.sleep(4)
    status = stop_and_wait(cluster, name)

    assert status["phase"] == "UPLOADED", status.get("error")
    phases = [h["phase"] for h in status["history"]]
    assert phases == ["INVOKED", "RECORDING", "PAUSED", "RECORDING", "UPLOADING", "UPLOADED"]
    assert status["attempts"] == 1  # the bot reconnected by itself
    (participant,) = status["participants"]
    assert (participant["userId"], participant["displayName"]) == ("stage", "Main stage")
    assert participant.get("leftAt") is None or utc(participant["leftAt"]) > killed + DOWN_S
    (gap,) = participant["gaps"]
    lost, back = utc(gap["startedAt"]), utc(gap["endedAt"])
    assert killed - 3 < lost < killed + MARGIN_S  # the last frame before the kill
    assert back - lost > DOWN_S

    outputs = status["outputs"]
    (composite,) = [o for o in outputs if o["kind"] == "composite"]
    (track,) = [o for o in outputs if o["kind"] == "track"]
    assert track["userId"] == "stage"
    video = _download(bucket, composite["key"], tmp_path / "composite.webm")
    video_s, _ = playable_seconds(video)
    assert abs(video_s - status["durationSeconds"]) < 2.5  # the pause is cut

    # The gap is in both files as silent time, between the tone before and after it. The
    # composite cuts the pause; a track keeps it as silence (its time is wall time).
    pause_s = utc(status["history"][3]["at"]) - utc(status["history"][2]["at"])
    track_file = _download(bucket, track["key"], tmp_path / "track.webm")
    for output, path, cut in ((composite, video, pause_s), (track, track_file, 0.0)):
        samples = audio_samples(path)
        begun = utc(output["startedAt"])
        gap_start, gap_end = lost - begun - cut, back - begun - cut
        assert rms(samples, gap_start + MARGIN_S, gap_end - MARGIN_S) < 0.005, output["kind"]
        assert rms(samples, gap_start - 2.5, gap_start - 0.5) > 0.05, output["kind"]
        assert rms(samples, gap_end + 0.5, gap_end + 2.5) > 0.05, output["kind"]


def test_refused_whep_endpoints_end_errored_with_the_message_and_no_retry(
    cluster: Cluster,
    operator: Operator,
    whep_streams: StreamFactory,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
) -> None:
    guarded = whep_streams("red", 440.0, token=TOKEN)
    cluster.run("create", "secret", "generic", "stale", "--from-literal=token=not-the-token")
    cluster.run("create", "secret", "generic", "sfu-token", f"--from-literal=token={TOKEN}")
    storage = storage_spec(seaweed, bucket, cluster.namespace)
    cases = {
        "bad-token": (
            {"url": guarded.server.whep_url, "tokenSecretRef": {"name": "stale", "key": "token"}},
            "HTTP 401",
            "spec.meeting.whep.endpoints[0].tokenSecretRef",
        ),
        "no-stream": (
            {
                "url": f"{guarded.server.url}/nowhere",
                "tokenSecretRef": {"name": "sfu-token", "key": "token"},
            },
            "HTTP 404",
            "spec.meeting.whep.endpoints[0].url",
        ),
    }
    for name, (endpoint, _, _) in cases.items():
        manifest = _example([{**endpoint, "userId": "stage"}], storage)
        manifest["metadata"]["name"] = manifest["spec"]["meeting"]["id"] = name
        cluster.apply(manifest)
    for name, (endpoint, says, field) in cases.items():
        status = cluster.wait_phase(name, "ERRORED", timeout=90)
        assert f"WHEP endpoint {endpoint['url']} refused the offer: {says}" in status["error"]
        assert field in status["error"]
        assert "not-the-token" not in str(status)
        assert [h["phase"] for h in status["history"]] == ["INVOKED", "ERRORED"]
        assert not status.get("outputs")
    time.sleep(5)  # long enough for a retry to have started, were there one
    for name in cases:
        assert cluster.status(name)["attempts"] == 1
        assert len(cluster.bot_pods(name)) <= 1
    assert not list(bucket.list_objects(f"{cluster.namespace}/"))

    # A token Secret without the key named is caught before any pod starts.
    keyless = {"url": guarded.server.whep_url, "tokenSecretRef": {"name": "stale", "key": "nope"}}
    manifest = _example([{**keyless, "userId": "stage"}], storage)
    manifest["metadata"]["name"] = manifest["spec"]["meeting"]["id"] = "keyless"
    cluster.apply(manifest)
    status = cluster.wait_phase("keyless", "ERRORED", timeout=60)  # startTimeoutSeconds: 15
    assert (
        "Secret 'stale' (spec.meeting.whep.endpoints[0].tokenSecretRef) has no key nope"
        in (status["error"])
    )
    assert not cluster.bot_pods("keyless")
