"""Webhook delivery end to end: retries that keep their webhook-id, an endpoint that is down
across an operator restart, a 400 that is final, retention on a test clock, and the SSRF
guard, all against the real API server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.storage_servers import SeaweedFS
from tapedeck_dev.webhook_receiver import Receiver, verified
from tapedeck_operator.aftercare import Aftercare
from tapedeck_operator.config import load_settings
from tests.egress import loopback_egress
from tests.janus.conftest import Meeting
from tests.operator.conftest import (
    Cluster,
    Operator,
    in_process_api,
    record_composite,
    recording_manifest,
    storage_spec,
    webhook,
)
from tests.waiting import eventually
from tests.webhook_schema import validate_status_update

PHASES = ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"]
NO_JANUS = "http://127.0.0.1:1/janus"  # a Recording that no bot will ever join


def _one_pass(aftercare: Aftercare, body: dict[str, Any]) -> None:
    """One pass of the operator's after-care, here in the test; its connections closed."""

    async def run() -> None:
        try:
            await aftercare.run_pass(body)
        finally:
            await aftercare.egress.close()

    asyncio.run(run())
    aftercare.storage_threads.shutdown()


def _deliveries(cluster: Cluster, name: str, target: str) -> dict[str, dict[str, Any]]:
    """The Recording's delivery state for one endpoint, by subject (history/{i})."""
    status = cluster.status(name)
    return {d["subject"]: d for d in status.get("webhookDeliveries") or [] if d["target"] == target}


def _phases_received(receiver: Receiver, path: str, secret: str) -> list[str]:
    """Each delivered event's phase once (retries share their webhook-id), in the order of the
    phases: retried events may succeed in any order."""
    seen: dict[str, str] = {}
    for request in receiver.requests(path):
        if request.answered == 200:
            payload = verified(request, secret)
            validate_status_update(payload)
            seen.setdefault(request.id or "", payload["recording"]["status"])
    return sorted(seen.values(), key=PHASES.index)


def test_deliveries_retry_with_one_id_survive_a_restart_and_stop_at_a_4xx(
    cluster: Cluster,
    operator: Operator,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    receiver: Receiver,
    webhook_secret: str,
    kubeconfig: Path,
) -> None:
    meeting.join(0)
    receiver.answer("/flaky", 500, 500, 500)  # then 200
    receiver.answer("/refusing", then=400)
    later = Receiver()  # down until the operator has been killed and restarted
    hooks = [receiver.url("/flaky"), receiver.url("/refusing"), later.url("/later")]
    record_composite(
        cluster,
        "retried",
        meeting,
        storage_spec(seaweed, bucket, cluster.namespace),
        seconds=3,
        webhooks=[webhook(url) for url in hooks],
    )

    # The endpoint that is down is being retried (its state is in the status) ...
    eventually(
        lambda: (
            _deliveries(cluster, "retried", "spec.webhooks[2]")
            .get("history/1", {})
            .get("attempts", 0)
            >= 2
        ),
        timeout=30,
        what="retries to the endpoint that is down",
    )
    # ... when the operator dies; the recording goes on and ends without it.
    operator.kill()
    cluster.set_state("retried", "Stopped")
    cluster.wait_phase("retried", "UPLOADED", timeout=120)
    operator.start()
    later.start()
    try:
        received = eventually(
            lambda: (r := _phases_received(later, "/later", webhook_secret)) == PHASES and r,
            timeout=60,
            what="every event at the endpoint that was down",
        )
    finally:
        later.close()
    assert received == PHASES

    # 500, 500, 500, 200: one event, one webhook-id, four attempts, counted in the status.
    flaky = receiver.requests("/flaky")
    first = [r for r in flaky if r.id == flaky[0].id]
    assert [r.answered for r in first] == [500, 500, 500, 200]
    eventually(
        lambda: _phases_received(receiver, "/flaky", webhook_secret) == PHASES,
        timeout=30,
        what="every event at the flaky endpoint",
    )
    flaky_state = _deliveries(cluster, "retried", "spec.webhooks[0]")
    assert (flaky_state["history/0"]["attempts"], flaky_state["history/0"]["state"]) == (
        4,
        "Delivered",
    )

    # A 400 is final: one request per event, Failed in the status, and a Warning Event.
    refusing = _deliveries(cluster, "retried", "spec.webhooks[1]")
    assert set(refusing) == {f"history/{i}" for i in range(len(PHASES))}
    assert {(d["state"], d["attempts"], d["lastStatus"]) for d in refusing.values()} == {
        ("Failed", 1, 400)
    }
    assert set(Counter(r.id for r in receiver.requests("/refusing")).values()) == {1}
    events = cluster.run("get", "events", "--field-selector", "involvedObject.name=retried")
    assert "WebhookFailed" in events
    assert "tapedeck_webhook_attempts_total" in operator.metrics()

    _check_retention_on_a_test_clock(cluster, bucket, operator, kubeconfig, "retried")


def _check_retention_on_a_test_clock(
    cluster: Cluster, bucket: ObjectStore, operator: Operator, kubeconfig: Path, name: str
) -> None:
    """The operator's own pass, run here with a clock past `expiresAt`, deletes the objects
    and marks the Recording expired (a real 7-day wait is not an option). The operator is
    stopped meanwhile: it would renew the download URLs on its own clock."""
    body = cluster.get("recording", name)
    status = body["status"]
    prefix = f"{cluster.namespace}/{body['metadata']['uid']}/"
    expires = dt.datetime.fromisoformat(status["expiresAt"])
    assert expires - dt.datetime.fromisoformat(status["history"][-1]["at"]) == dt.timedelta(days=7)
    assert bucket.list_objects(prefix)

    def run_at(now: dt.datetime) -> None:
        aftercare = Aftercare(
            in_process_api(kubeconfig),
            load_settings(operator.config),
            loopback_egress(),
            clock=lambda: now,
        )
        _one_pass(aftercare, cluster.get("recording", name))

    operator.stop()
    try:
        run_at(expires - dt.timedelta(minutes=1))
        assert bucket.list_objects(prefix)
        assert not cluster.status(name).get("expired")
        run_at(expires)
    finally:
        operator.start()
    assert bucket.list_objects(prefix) == []
    status = cluster.status(name)
    assert status["expired"] is True
    assert "downloadUrl" not in status
    assert status["downloads"] == []


def test_webhooks_to_internal_addresses_are_refused_with_a_clear_status(
    cluster: Cluster, operator: Operator, kubeconfig: Path, webhook_secret: str
) -> None:
    """The guard sits at name resolution: names that resolve (by the test's resolver) to a
    private or a metadata address are refused, as are such IP literals, and the status says
    which setting would allow them. The test's transport refuses every non-loopback address
    too, so nothing leaves loopback even if the guard broke. The operator is stopped
    meanwhile: its resolver is the system's, and these names are not for real DNS."""
    hooks = [
        "http://internal.example/hook",
        "http://metadata.example/latest/meta-data",
        "http://10.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
    ]
    names = {"internal.example": ["10.0.0.1"], "metadata.example": ["169.254.169.254"]}
    operator.stop()
    try:
        manifest = recording_manifest(
            "guarded", "guarded", NO_JANUS, 1, webhooks=[webhook(url) for url in hooks]
        )
        cluster.apply(manifest)
        invoked = {"history": [{"phase": "INVOKED", "at": dt.datetime.now(dt.UTC).isoformat()}]}
        cluster.run(
            "patch", "recording", "guarded", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": invoked}),
        )  # fmt: skip
        aftercare = Aftercare(
            in_process_api(kubeconfig),
            load_settings(operator.config),
            loopback_egress(names=names),
        )
        _one_pass(aftercare, cluster.get("recording", "guarded"))
        deliveries = {d["target"]: d for d in cluster.status("guarded")["webhookDeliveries"]}
        cluster.run("delete", "recording", "guarded")  # never seen by the operator
    finally:
        operator.start()
    # The operator's own endpoint (its settings) is on loopback, which the tests allow.
    assert deliveries.pop("settings.webhooks[0]")["state"] == "Delivered"
    assert {(d["state"], d["attempts"]) for d in deliveries.values()} == {("Failed", 1)}
    private, metadata, literal, link_local = (
        deliveries[f"spec.webhooks[{i}]"]["lastError"] for i in range(4)
    )
    assert "internal.example resolves to 10.0.0.1, a private address" in private
    assert "webhooks.allowPrivateDestinations" in private
    assert "metadata.example resolves to 169.254.169.254, a link-local address" in metadata
    assert "10.0.0.1 is a private address" in literal
    assert "169.254.169.254 is a link-local address" in link_local
