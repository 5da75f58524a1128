"""The after-care loop's own logic, with an in-memory API server and webhook transport: lost
status writes, failing steps, an endpoint that is down. (The end-to-end tests prove the
features against the real API server, SeaweedFS and an HTTP receiver.)"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from tapedeck_operator.aftercare import Aftercare
from tapedeck_operator.config import OperatorSettings
from tapedeck_operator.webhooks.delivery import Delivery
from tapedeck_operator.webhooks.egress import AddressPolicy, Egress

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
STORAGE = {
    "type": "s3",
    "region": "us-east-1",
    "endpoint": "http://127.0.0.1:9",
    "bucket": "recordings",
    "secretRef": {"name": "s3"},
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class FakeApi:
    """The calls the after-care makes, on one Recording in memory."""

    def __init__(self, body: dict[str, Any], secrets: dict[str, dict[str, str]]) -> None:
        self.body = body
        self.secrets = secrets
        self.down = False
        self.writes = 0

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.secrets.get(name)

    def patch_recording_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("the API server is away")
        self.writes += 1
        stored = self.body.setdefault("status", {})
        for key, value in status.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = copy.deepcopy(value)
        return self.body


class FakeEgress(Egress):
    """Answers as scripted per URL, and records what was sent."""

    def __init__(self, answers: Mapping[str, Delivery]) -> None:
        super().__init__(AddressPolicy())
        self.answers = answers
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
        self.sent.append((url, json.loads(body)))
        return self.answers.get(url, Delivery(200, None))


def _recording(phases: list[str], **spec: Any) -> dict[str, Any]:
    history = [
        {"phase": p, "at": (T0 + dt.timedelta(seconds=i)).isoformat()} for i, p in enumerate(phases)
    ]
    return {
        "metadata": {"namespace": "team-a", "name": "standup", "uid": "u-1"},
        "spec": {
            "meeting": {"id": "m1", "janus": {"url": "http://127.0.0.1:8088/janus", "room": 1}},
            "storage": STORAGE,
            **spec,
        },
        "status": {"history": history, "phase": phases[-1]},
    }


def _hook(url: str) -> dict[str, Any]:
    return {"url": url, "secretRef": {"name": "hook", "key": "key"}}


def _aftercare(api: FakeApi, egress: FakeEgress, now: dt.datetime = T0) -> Aftercare:
    emitted: list[tuple[str, str]] = []
    care = Aftercare(
        api,  # type: ignore[arg-type]
        OperatorSettings(namespace="tapedeck-system"),
        egress,
        emit=lambda body, kind, reason, message: emitted.append((reason, message)),
        clock=lambda: now,
        jitter=lambda: 0.5,
    )
    care.emitted = emitted  # type: ignore[attr-defined]
    return care


def _secrets(**extra: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"hook": {"key": _b64(SECRET)}, **extra}


def test_a_lost_status_write_is_written_again_and_no_webhook_is_sent_twice() -> None:
    api = FakeApi(_recording(["INVOKED"], webhooks=[_hook("http://a/hook")]), _secrets())
    egress = FakeEgress({})
    care = _aftercare(api, egress)
    api.down = True
    asyncio.run(care.run_pass(api.body))
    assert len(egress.sent) == 1
    assert "webhookDeliveries" not in api.body["status"]  # the write was lost
    api.down = False
    asyncio.run(care.run_pass(api.body))
    assert len(egress.sent) == 1  # decided is decided: not sent again
    [delivery] = api.body["status"]["webhookDeliveries"]
    assert (delivery["state"], delivery["attempts"]) == ("Delivered", 1)


def test_a_failing_step_does_not_stop_the_others_and_is_reported_once() -> None:
    body = _recording(
        ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"], webhooks=[_hook("http://a/h")]
    )
    body["status"]["outputs"] = [
        {"kind": "composite", "key": "u-1/a.webm", "contentType": "video/webm", "bytes": 10}
    ]
    api = FakeApi(body, _secrets())  # no Secret "s3": the download URLs cannot be signed
    egress = FakeEgress({})
    care = _aftercare(api, egress)
    asyncio.run(care.run_pass(api.body))
    asyncio.run(care.run_pass(api.body))
    assert [p["recording"]["status"] for _, p in egress.sent] == [
        "INVOKED", "RECORDING", "UPLOADING", "UPLOADED",
    ]  # fmt: skip
    assert "downloadUrl" not in egress.sent[-1][1]["recording"]
    failures = [m for reason, m in care.emitted if reason == "AftercareFailed"]  # type: ignore[attr-defined]
    assert failures == ["downloads: Secret team-a/s3 (its secretRef) does not exist"]


def test_the_uploaded_event_carries_the_download_urls() -> None:
    body = _recording(
        ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"], webhooks=[_hook("http://a/h")]
    )
    body["status"]["outputs"] = [
        {"kind": "composite", "key": "u-1/a.webm", "contentType": "video/webm", "bytes": 10},
        {"kind": "track", "key": "u-1/t.webm", "contentType": "audio/webm", "userId": "al"},
    ]
    keys = {"accessKeyId": _b64("id"), "secretAccessKey": _b64("secret")}
    api = FakeApi(body, _secrets(s3=keys))
    egress = FakeEgress({})
    asyncio.run(_aftercare(api, egress).run_pass(api.body))  # presigning is offline
    uploaded = egress.sent[-1][1]["recording"]
    assert uploaded["downloadUrl"] == api.body["status"]["downloadUrl"]
    assert uploaded["downloadUrl"].startswith("http://127.0.0.1:9/recordings/u-1/a.webm?")
    assert [o.get("userId") for o in uploaded["outputs"]] == [None, "al"]
    assert all(o["downloadUrl"] for o in uploaded["outputs"])


def test_an_endpoint_that_is_down_costs_one_request_a_pass() -> None:
    refused = Delivery(None, "connection refused: a:80")
    api = FakeApi(
        _recording(["INVOKED", "RECORDING", "PAUSED"], webhooks=[_hook("http://a/h")]), _secrets()
    )
    egress = FakeEgress({"http://a/h": refused})
    care = _aftercare(api, egress)
    next_at = asyncio.run(care.run_pass(api.body))
    assert len(egress.sent) == 1
    deliveries = api.body["status"]["webhookDeliveries"]
    assert [d["attempts"] for d in deliveries] == [1, 0, 0]
    assert next_at is not None
    assert next_at > T0
    times = {
        dt.datetime.fromisoformat(d["nextAttemptAt"].replace("Z", "+00:00")) for d in deliveries
    }
    assert times == {next_at}  # the events behind the failed one wait for the same retry
