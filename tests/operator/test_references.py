"""Bad references never hang silently: each ends in a status that names the problem."""

from __future__ import annotations

from typing import Any

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.storage_servers import SeaweedFS
from tests.gitops_health import health
from tests.operator.conftest import Cluster, Operator, recording_manifest, storage_spec
from tests.waiting import eventually


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == kind)


def test_bad_references_are_reported_with_the_field_to_fix(
    cluster: Cluster,
    operator: Operator,
    janus: JanusServer,
    room: int,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
) -> None:
    storage = storage_spec(seaweed, bucket, cluster.namespace)
    absent = {**storage, "secretRef": {"name": "absent"}}
    # "first" holds meeting m-1 while it waits for its Secret; "second" asks for it too.
    cluster.apply(recording_manifest("first", "m-1", janus.http_url, room, storage=absent))
    eventually(
        lambda: cluster.status("first").get("phase") == "INVOKED", what="first to be INVOKED"
    )
    cluster.apply(recording_manifest("second", "m-1", janus.http_url, room, storage=storage))
    cluster.apply(
        recording_manifest("wrong-room", "m-2", janus.http_url, 987654321, storage=storage)
    )
    cluster.apply(
        recording_manifest("unreachable", "m-3", "http://127.0.0.1:9/janus", room, storage=storage)
    )

    second = cluster.wait_phase("second", "ERRORED", timeout=30)
    assert second["history"][-1]["reason"] == "AlreadyRecording"
    assert "'first'" in second["error"]
    assert "allowMultipleRecordings" in second["error"]
    assert not cluster.bot_pods("second")

    def degraded() -> dict[str, Any] | None:
        condition = _condition(cluster.status("first"), "Degraded")
        return condition if condition["status"] == "True" else None

    condition = eventually(degraded, timeout=30, what="first to be Degraded")
    assert condition["reason"] == "SecretNotFound"
    assert "'absent'" in condition["message"]
    assert "spec.storage.secretRef" in condition["message"]
    first = cluster.wait_phase("first", "ERRORED", timeout=60)  # startTimeoutSeconds: 15
    assert "spec.storage.secretRef" in first["error"]
    assert not cluster.bot_pods("first")

    wrong = cluster.wait_phase("wrong-room", "ERRORED", timeout=90)
    assert "987654321" in wrong["error"]
    assert "spec.meeting.janus.room" in wrong["error"]
    eventually(
        lambda: _condition(cluster.status("wrong-room"), "Ready")["message"] == wrong["error"],
        what="the bot's error in the Ready condition",
    )
    # GitOps health: kstatus (Flux, kpt) reads an ERRORED Recording as Failed, and our Argo
    # CD script as Degraded, both with the error.
    verdict = health(cluster.kubectl, cluster.namespace, "recording", "wrong-room")
    assert (verdict.kstatus.status, verdict.kstatus.message) == ("Failed", wrong["error"])
    assert (verdict.argocd.status, verdict.argocd.message) == ("Degraded", wrong["error"])

    unreachable = cluster.wait_phase("unreachable", "ERRORED", timeout=120)
    assert "http://127.0.0.1:9/janus" in unreachable["error"]
    assert "cannot join" in unreachable["error"]
    events = cluster.run("get", "events", "--field-selector", "type=Warning")
    assert "AlreadyRecording" not in events or "Errored" in events
    assert "Errored" in events
