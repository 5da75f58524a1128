"""Faults mid-recording: a killed bot, a restarted operator, an absent API server, deletion,
and a stop before the bot ever started."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.cluster import LocalCluster
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.storage_servers import SeaweedFS
from tests.janus.conftest import Meeting
from tests.operator.conftest import Cluster, Operator, recording_manifest, storage_spec
from tests.storage.media import playable_seconds
from tests.waiting import eventually

COMPOSITE = {"video": {"codec": "VP8", "width": 640, "height": 360}}


def _utc(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _apply(cluster: Cluster, name: str, meeting: Meeting, spec: dict[str, Any]) -> None:
    cluster.apply(recording_manifest(name, name, meeting.url, meeting.room, **spec))


def _stop_and_wait(cluster: Cluster, name: str) -> dict[str, Any]:
    """Stop, and wait for the outcome and for the operator to have turned it into Ready."""
    cluster.set_state(name, "Stopped")
    cluster.wait_phase(name, "UPLOADED", "ERRORED", timeout=120)

    def concluded() -> dict[str, Any] | None:
        status = cluster.status(name)
        ready = {c["type"]: c for c in status.get("conditions") or []}.get("Ready", {})
        return status if ready.get("reason") in ("Uploaded", "Errored") else None

    return eventually(concluded, timeout=30, what=f"{name}'s Ready condition")


def _segment_seconds(store: ObjectStore, key: str, path: Path) -> float:
    path.write_bytes(b"".join(store.read(key, 1 << 20)))
    video, audio = playable_seconds(path)
    assert audio > 1
    return video


def test_killed_bot_restarts_in_place_and_both_segments_decode(
    cluster: Cluster,
    operator: Operator,
    janus: JanusServer,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    tmp_path: Path,
) -> None:
    meeting.join(0)
    storage = storage_spec(seaweed, bucket, cluster.namespace)
    _apply(cluster, "crash", meeting, {"composite": COMPOSITE, "storage": storage})
    started = _utc(cluster.wait_phase("crash", "RECORDING", timeout=60)["startedAt"])
    time.sleep(max(0.0, started + 8 - time.time()))

    (pod,) = cluster.bot_pods("crash")
    pid = int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("process://"))
    os.kill(pid, signal.SIGKILL)
    killed = time.time()

    def rerecording() -> dict[str, Any] | None:
        status = cluster.status("crash")
        recordings = [h for h in status.get("history") or [] if h["phase"] == "RECORDING"]
        return status if len(recordings) == 2 else None

    status = eventually(rerecording, timeout=30, what="the restarted bot to record again")
    rejoined = _utc(status["history"][-1]["at"])
    assert rejoined - killed < 10
    time.sleep(6)
    status = _stop_and_wait(cluster, "crash")

    assert status["phase"] == "UPLOADED", status.get("error")
    (pod,) = cluster.bot_pods("crash")  # restarted in place: still one pod
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 1
    assert status["attempts"] == 1
    composites = sorted(
        (o for o in status["outputs"] if o["kind"] == "composite"), key=lambda o: o["startedAt"]
    )
    assert [c["salvaged"] for c in composites] == [True, False]
    first = _segment_seconds(bucket, composites[0]["key"], tmp_path / "a.webm")
    second = _segment_seconds(bucket, composites[1]["key"], tmp_path / "b.webm")
    assert first > 5
    assert second > 4
    gap = _utc(composites[1]["startedAt"]) - (_utc(composites[0]["startedAt"]) + first)
    assert 0 <= gap < 10


def test_deleting_a_running_recording_uploads_and_leaves_nothing_behind(
    cluster: Cluster,
    operator: Operator,
    janus: JanusServer,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    tmp_path: Path,
) -> None:
    meeting.join(0)
    storage = storage_spec(seaweed, bucket, cluster.namespace)
    _apply(cluster, "doomed", meeting, {"composite": COMPOSITE, "storage": storage})
    started = _utc(cluster.wait_phase("doomed", "RECORDING", timeout=60)["startedAt"])
    time.sleep(max(0.0, started + 6 - time.time()))
    cluster.run("delete", "recording", "doomed", "--wait=false")
    eventually(lambda: not cluster.exists("recording", "doomed"), timeout=120, what="deletion")

    objects = list(bucket.list_objects(f"{cluster.namespace}/"))
    (composite,) = [o for o in objects if "_composite_" in o.key]
    assert _segment_seconds(bucket, composite.key, tmp_path / "doomed.webm") > 4
    assert bucket.list_uploads(f"{cluster.namespace}/") == []  # every upload completed
    for kind in ("pods", "roles", "rolebindings", "serviceaccounts"):
        eventually(
            lambda kind=kind: "doomed" not in cluster.run("get", kind, "-o", "name"),
            timeout=60,
            what=f"the garbage collector to remove the bot's {kind}",
        )


def _kubelet_pid() -> int:
    out = subprocess.run(
        ["pgrep", "-f", "tapedeck_dev.cli kubelet"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[0])


def test_stop_while_the_pod_is_pending_ends_cleanly_without_a_pod(
    cluster: Cluster, operator: Operator, janus: JanusServer, room: int
) -> None:
    kubelet = _kubelet_pid()
    os.kill(kubelet, signal.SIGSTOP)  # the node stops taking pods: the bot stays Pending
    try:
        cluster.apply(recording_manifest("early", "early", janus.http_url, room))
        eventually(lambda: cluster.bot_pods("early"), timeout=30, what="the bot pod")
        (pod,) = cluster.bot_pods("early")
        assert pod["status"].get("phase", "Pending") == "Pending"
        cluster.set_state("early", "Stopped")
        status = cluster.wait_phase("early", "UPLOADED", "ERRORED", timeout=30)
        eventually(lambda: not cluster.bot_pods("early"), timeout=30, what="no pod left")
    finally:
        os.kill(kubelet, signal.SIGCONT)
    assert status["phase"] == "UPLOADED"
    assert status["history"][-1]["reason"] == "StoppedBeforeStart"
    assert [h["phase"] for h in status["history"]] == ["INVOKED", "UPLOADED"]
    assert json.dumps(status.get("outputs", [])) == "[]"


# Last in the suite: the controller-manager takes a while to resync after the outage.
def test_recording_survives_operator_restart_and_api_server_outage(
    cluster: Cluster,
    operator: Operator,
    local_cluster: LocalCluster,
    janus: JanusServer,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    tmp_path: Path,
) -> None:
    meeting.join(0)
    meeting.join(1)
    storage = storage_spec(seaweed, bucket, cluster.namespace)
    _apply(cluster, "steady", meeting, {"composite": COMPOSITE, "storage": storage})
    started = _utc(cluster.wait_phase("steady", "RECORDING", timeout=60)["startedAt"])

    operator.kill()
    time.sleep(4)
    operator.start()
    time.sleep(4)
    local_cluster.stop_component("kube-apiserver")
    time.sleep(20)
    local_cluster.start_component("kube-apiserver")
    time.sleep(4)
    status = _stop_and_wait(cluster, "steady")

    assert status["phase"] == "UPLOADED", status.get("error")
    assert len(cluster.bot_pods("steady")) == 1  # no duplicate after the restart
    assert status["attempts"] == 1
    phases = [h["phase"] for h in status["history"]]
    assert phases == ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"]
    times = [_utc(h["at"]) for h in status["history"]]
    assert times == sorted(times)
    assert {p["userId"] for p in status["participants"]} == {p.name for p in meeting.people}
    (composite,) = [o for o in status["outputs"] if o["kind"] == "composite"]
    seconds = _segment_seconds(bucket, composite["key"], tmp_path / "steady.webm")
    wall = _utc(status["stoppedAt"]) - started
    assert wall > 30
    assert abs(seconds - wall) < 3  # nothing lost while the API server was away
    assert abs(status["durationSeconds"] - seconds) < 3
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "True"
