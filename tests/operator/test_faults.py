"""Faults mid-recording: a killed bot, deletion, and a stop before the bot ever started."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.storage_servers import SeaweedFS
from tapedeck_dev.webhook_receiver import Receiver, verified
from tests.janus.conftest import Meeting
from tests.operator.conftest import (
    Cluster,
    Operator,
    record_composite,
    recording_manifest,
    segment_seconds,
    stop_and_wait,
    storage_spec,
    utc,
    webhook,
)
from tests.storage.http import get
from tests.waiting import eventually
from tests.webhook_schema import validate_status_update


def _recording_count(cluster: Cluster, name: str, count: int) -> dict[str, Any] | None:
    status = cluster.status(name)
    recordings = [h for h in status.get("history") or [] if h["phase"] == "RECORDING"]
    return status if len(recordings) == count else None


def test_killed_bot_restarts_in_place_and_a_lost_pod_is_replaced(
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
    record_composite(cluster, "crash", meeting, storage, seconds=8)

    # The bot process dies: its container restarts in place and salvages the spool.
    (pod,) = cluster.bot_pods("crash")
    pid = int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("process://"))
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    status = eventually(
        lambda: _recording_count(cluster, "crash", 2), timeout=30, what="a restart in place"
    )
    assert utc(status["history"][-1]["at"]) - killed < 10
    time.sleep(6)
    (pod,) = cluster.bot_pods("crash")
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 1

    # The pod is lost: a new attempt, a new pod, rejoins.
    cluster.run("delete", "pod", pod["metadata"]["name"], "--wait=false")
    status = eventually(
        lambda: _recording_count(cluster, "crash", 3), timeout=60, what="a second attempt"
    )
    time.sleep(6)
    status = stop_and_wait(cluster, "crash")

    assert status["phase"] == "UPLOADED", status.get("error")
    assert status["attempts"] == 2
    assert [p["metadata"]["name"] for p in cluster.bot_pods("crash")] == ["crash-bot-2"]
    composites = sorted(
        (o for o in status["outputs"] if o["kind"] == "composite"), key=lambda o: o["startedAt"]
    )
    assert len(composites) == 3  # the killed one, the restarted one, the second pod's
    seconds = [
        segment_seconds(bucket, c["key"], tmp_path / f"{n}.webm") for n, c in enumerate(composites)
    ]
    assert min(seconds) > 4
    for n in range(len(composites) - 1):
        end = utc(composites[n]["startedAt"]) + seconds[n]
        gap = utc(composites[n + 1]["startedAt"]) - end
        assert 0 <= gap < 10, (composites[n]["key"], gap)
    events = cluster.run("get", "events", "--field-selector", "reason=BotStarting")
    assert "restarting after a lost pod: attempt 2" in events

    # Every segment, the salvaged ones too, gets a download URL that fetches its bytes.
    downloads = eventually(
        lambda: cluster.status("crash").get("downloads"), timeout=30, what="download URLs"
    )
    downloads = sorted(downloads, key=lambda d: d["key"])
    assert [d["key"] for d in downloads] == sorted(c["key"] for c in composites)
    assert [d["salvaged"] for d in downloads] == [
        c["salvaged"] for c in sorted(composites, key=lambda c: c["key"])
    ]
    for download in downloads:
        assert get(download["url"]) == b"".join(bucket.read(download["key"], 1 << 20))


def test_deleting_a_running_recording_uploads_and_leaves_nothing_behind(
    cluster: Cluster,
    operator: Operator,
    janus: JanusServer,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    receiver: Receiver,
    webhook_secret: str,
    tmp_path: Path,
) -> None:
    meeting.join(0)
    storage = storage_spec(seaweed, bucket, cluster.namespace)
    hooks = [webhook(receiver.url("/doomed"))]
    record_composite(cluster, "doomed", meeting, storage, seconds=6, webhooks=hooks)
    cluster.run("delete", "recording", "doomed", "--wait=false")
    eventually(lambda: not cluster.exists("recording", "doomed"), timeout=120, what="deletion")

    # The transitions after the deletion still reach the webhook, URLs and all.
    events = [verified(r, webhook_secret) for r in receiver.requests("/doomed")]
    for event in events:
        validate_status_update(event)
    phases = [e["recording"]["status"] for e in events]
    assert phases == ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"]
    assert events[-1]["recording"]["downloadUrl"]

    objects = list(bucket.list_objects(f"{cluster.namespace}/"))
    (composite,) = [o for o in objects if "_composite_" in o.key]
    assert segment_seconds(bucket, composite.key, tmp_path / "doomed.webm") > 4
    assert bucket.list_uploads(f"{cluster.namespace}/") == []  # every upload completed
    for kind in ("pods", "roles", "rolebindings", "serviceaccounts"):
        eventually(
            lambda kind=kind: "doomed" not in cluster.run("get", kind, "-o", "name"),
            timeout=60,
            what=f"the garbage collector to remove the bot's {kind}",
        )


def _kubelet_pid() -> int:
    """The session's process kubelet (the `kubelet` fixture's child)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"tapedeck_dev.cli" in argv and b"kubelet" in argv:
            return int(proc.name)
    raise AssertionError("no process kubelet is running")


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
