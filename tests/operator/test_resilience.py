"""A recording goes on while the operator restarts and while the API server is away.

Last of the cluster suites (by name): the controller-manager takes a while to resync after the
outage, and nothing after this needs it.
"""

from __future__ import annotations

import time
from pathlib import Path

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.cluster import LocalCluster
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.storage_servers import SeaweedFS
from tests.janus.conftest import Meeting
from tests.operator.conftest import (
    Cluster,
    Operator,
    record_composite,
    segment_seconds,
    stop_and_wait,
    storage_spec,
    utc,
)


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
    started = record_composite(cluster, "steady", meeting, storage, seconds=0)

    operator.kill()
    time.sleep(4)
    operator.start()
    time.sleep(4)
    local_cluster.stop_component("kube-apiserver")
    time.sleep(20)
    local_cluster.start_component("kube-apiserver")
    time.sleep(4)
    status = stop_and_wait(cluster, "steady")

    assert status["phase"] == "UPLOADED", status.get("error")
    assert len(cluster.bot_pods("steady")) == 1  # no duplicate after the restart
    assert status["attempts"] == 1
    phases = [h["phase"] for h in status["history"]]
    assert phases == ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"]
    times = [utc(h["at"]) for h in status["history"]]
    assert times == sorted(times)
    assert {p["userId"] for p in status["participants"]} == {p.name for p in meeting.people}
    (composite,) = [o for o in status["outputs"] if o["kind"] == "composite"]
    seconds = segment_seconds(bucket, composite["key"], tmp_path / "steady.webm")
    wall = utc(status["stoppedAt"]) - started
    assert wall > 30
    assert abs(seconds - wall) < 3  # nothing lost while the API server was away
    assert abs(status["durationSeconds"] - seconds) < 3
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "True"
