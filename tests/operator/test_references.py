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
    # Watermarks: a private address (refused whatever the wait), an image server that is
    # down (waited for), and a ConfigMap key that holds no PNG.
    cluster.run("create", "configmap", "branding", "--from-literal=logo.png=<svg/>")
    for name, watermark in [
        ("private-logo", {"url": "https://10.0.0.7/logo.png"}),
        ("logo-offline", {"url": "https://127.0.0.1:9/logo.png"}),
        ("logo-not-png", {"configMapKeyRef": {"name": "branding", "key": "logo.png"}}),
    ]:
        cluster.apply(
            recording_manifest(
                name, name, janus.http_url, room, storage=storage,
                composite={"watermark": watermark},
            )
        )  # fmt: skip

    _check_waiting_watermark(cluster)
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

    _check_watermarks(cluster)

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


def _check_waiting_watermark(cluster: Cluster) -> None:
    """Within startTimeoutSeconds of its creation, a watermark that may yet come is waited
    for, Degraded with the reason."""

    def degraded() -> dict[str, Any] | None:
        condition = _condition(cluster.status("logo-offline"), "Degraded")
        return condition if condition["status"] == "True" else None

    condition = eventually(degraded, timeout=15, what="logo-offline to be Degraded")
    assert condition["reason"] == "WatermarkUnavailable"
    assert "https://127.0.0.1:9/logo.png: connection refused" in condition["message"]


def _check_watermarks(cluster: Cluster) -> None:
    """An image no wait can fix ends the Recording at once, one that may come waits (Degraded)
    until startTimeoutSeconds; neither starts a pod, and each names the field."""
    private = cluster.wait_phase("private-logo", "ERRORED", timeout=30)
    assert private["history"][-1]["reason"] == "WatermarkUnusable"
    assert private["error"].startswith("spec.composite.watermark.url: cannot fetch the image: ")
    assert "10.0.0.7 is a private address" in private["error"]
    assert "webhooks.allowPrivateDestinations" in private["error"]
    not_png = cluster.wait_phase("logo-not-png", "ERRORED", timeout=30)
    assert not_png["history"][-1]["reason"] == "WatermarkUnusable"
    assert "spec.composite.watermark.configMapKeyRef" in not_png["error"]
    assert "is not a PNG" in not_png["error"]

    offline = cluster.wait_phase("logo-offline", "ERRORED", timeout=60)  # startTimeoutSeconds
    assert offline["history"][-1]["reason"] == "WatermarkUnavailable"
    for name in ("private-logo", "logo-not-png", "logo-offline"):
        assert not cluster.bot_pods(name), name
        assert not cluster.status(name).get("attempts"), name
