"""RealtimeKit's recording object and error shape, built from Recordings in every phase, are
valid against RealtimeKit's schema bundle, with no field beyond it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tapedeck_bot.contract import Output, Phase, RecordingStatus, StopReason, Transition
from tapedeck_operator.api.responses import (
    error_body,
    recording_detail,
    recording_object,
    success_body,
)
from tests.realtimekit_api import detail_fields, recording_fields, validate

UID = "6f2c3c4e-2d52-4b9a-9f4e-0b7f1c2d3e4f"
T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
COMPOSITE = Output(
    kind="composite",
    key="recordings/6f2c/standup_composite.mp4",
    content_type="video/mp4",
    bytes=1234,
    complete=True,
)


def _recording(status: RecordingStatus | None) -> dict[str, Any]:
    return {
        "metadata": {"uid": UID, "creationTimestamp": "2026-11-27T08:59:58Z"},
        "status": status.model_dump(by_alias=True, mode="json", exclude_none=True)
        if status
        else None,
    }


def _status(phase: Phase, **fields: Any) -> RecordingStatus:
    return RecordingStatus(history=[Transition(phase=phase, at=T0)], phase=phase, **fields)


CASES = {
    "new": None,
    "recording": _status(Phase.RECORDING, started_at=T0),
    "uploaded": _status(
        Phase.UPLOADED,
        started_at=T0,
        stopped_at=T0 + dt.timedelta(seconds=61.4),
        duration_seconds=61.4,
        stop_reason=StopReason.STOPPED,
        outputs=[COMPOSITE],
        download_url="https://bucket.example/recordings/6f2c/standup_composite.mp4?X-Amz=1",
        download_url_expiry=T0 + dt.timedelta(days=7),
    ),
    "errored": _status(Phase.ERRORED, stop_reason=StopReason.ERROR, error="meeting failed"),
    "expired": _status(
        Phase.UPLOADED,
        outputs=[COMPOSITE],
        stop_reason=StopReason.MAX_SECONDS,
        download_url="https://bucket.example/x",
        download_url_expiry=T0,
        expired=True,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_phase_is_a_valid_realtimekit_recording(case: str) -> None:
    detail = recording_detail(_recording(CASES[case]))
    validate(success_body(detail), "GetRecordingResponse")
    assert set(detail) <= detail_fields()
    assert detail["id"] == UID
    plain = recording_object(_recording(CASES[case]))
    validate(success_body(plain), "ActiveRecordingResponse")
    assert set(plain) <= recording_fields()  # no detail fields where RealtimeKit has none


def test_the_fields_say_what_the_status_says() -> None:
    new = recording_object(_recording(None))
    assert new["status"] == "INVOKED"
    assert new["invoked_time"] == "2026-11-27T08:59:58.000Z"
    assert new["started_time"] is None
    uploaded = recording_detail(_recording(CASES["uploaded"]))
    assert uploaded["status"] == "UPLOADED"
    assert uploaded["recording_duration"] == 61
    assert uploaded["output_file_name"] == "standup_composite.mp4"
    assert uploaded["file_size"] == 1234
    assert uploaded["download_url"].startswith("https://bucket.example/")
    assert uploaded["download_url_expiry"] == "2026-12-04T09:00:00.000Z"
    assert uploaded["stop_reason"] == {"reason": "API_CALL"}
    assert recording_detail(_recording(CASES["errored"]))["stop_reason"] == {
        "reason": "INTERNAL_ERROR"
    }
    expired = recording_object(_recording(CASES["expired"]))
    assert (expired["download_url"], expired["file_size"]) == (None, None)  # deleted


def test_errors_have_realtimekit_s_shape() -> None:
    body = error_body(403, "forbidden: cannot create recordings in namespace team-a")
    validate(body, "ErrorResponse")
    assert body == {
        "success": False,
        "error": {
            "code": 403,
            "message": "forbidden: cannot create recordings in namespace team-a",
        },
    }
