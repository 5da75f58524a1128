"""Webhook bodies: RealtimeKit's `recording.statusUpdate` and our `recording.transferUpdate`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tapedeck_bot.contract import (
    Download,
    Output,
    Phase,
    RecordingStatus,
    StopReason,
    TransferState,
    TransferStatus,
    Transition,
)
from tapedeck_operator.webhooks.payloads import (
    STATUS_UPDATE,
    TRANSFER_UPDATE,
    RecordingRef,
    encode,
    primary_composite,
    status_update,
    transfer_update,
)
from tests.webhook_schema import EXAMPLES, validate_status_update

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
REF = RecordingRef(uid="5f0c7a1e-uid", namespace="team-a", name="standup", meeting_id="m1")
EXPIRY = T0 + dt.timedelta(days=7)

COMPOSITE = Output(
    kind="composite",
    key="recordings/uid/standup_composite.mp4",
    content_type="video/mp4",
    bytes=2_044_680,
    complete=True,
)
SEGMENT = Output(
    kind="composite",
    key="recordings/uid/standup_composite.part1.mp4",
    content_type="video/mp4",
    bytes=1_000,
    complete=True,
    salvaged=True,
)
ALICE = Output(
    kind="track",
    key="recordings/uid/tracks/alice.webm",
    content_type="audio/webm",
    bytes=300,
    user_id="alice",
)
BOB = Output(
    kind="track",
    key="recordings/uid/tracks/bob.webm",
    content_type="audio/webm",
    bytes=200,
    user_id="bob",
)
OUTPUTS = [COMPOSITE, SEGMENT, ALICE, BOB]

PHASES = [
    Phase.INVOKED,
    Phase.RECORDING,
    Phase.PAUSED,
    Phase.RECORDING,
    Phase.UPLOADING,
    Phase.UPLOADED,
]


def _url(output: Output) -> str:
    return f"http://127.0.0.1:8333/bucket/{output.key}?X-Amz-Signature=abc"


def _download(output: Output) -> Download:
    return Download(
        key=output.key,
        kind=output.kind,
        user_id=output.user_id,
        bytes=output.bytes,
        salvaged=output.salvaged,
        url=_url(output),
        expires_at=EXPIRY,
    )


def _status(**changes: Any) -> RecordingStatus:
    history = [
        Transition(phase=phase, at=T0 + dt.timedelta(minutes=i)) for i, phase in enumerate(PHASES)
    ]
    fields: dict[str, Any] = {
        "phase": Phase.UPLOADED,
        "started_at": T0 + dt.timedelta(minutes=1),
        "stopped_at": T0 + dt.timedelta(minutes=4),
        "duration_seconds": 150.4,
        "stop_reason": StopReason.STOPPED,
        "outputs": OUTPUTS,
        "history": history,
        "downloads": [_download(o) for o in OUTPUTS],
        "download_url": _url(COMPOSITE),
        "download_url_expiry": EXPIRY,
    }
    fields.update(changes)
    return RecordingStatus(**fields)


STATUS = _status()


def _recording(index: int, status: RecordingStatus = STATUS) -> dict[str, Any]:
    payload = status_update(REF, status, index)
    recording: dict[str, Any] = payload["recording"]
    return recording


# The schema and its validator


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name.split(".")[2] for p in EXAMPLES])
def test_the_schema_accepts_realtimekits_example_payloads(example: Path) -> None:
    validate_status_update(json.loads(example.read_text()))


def test_there_are_three_realtimekit_examples() -> None:
    assert len(EXAMPLES) == 3


def test_the_schema_rejects_a_payload_without_a_recording_id() -> None:
    payload = json.loads(EXAMPLES[0].read_text())
    del payload["recording"]["id"]
    with pytest.raises(AssertionError, match="'id' is a required property"):
        validate_status_update(payload)


def test_the_schema_accepts_paused_but_no_unknown_status() -> None:
    payload = status_update(REF, STATUS, PHASES.index(Phase.PAUSED))
    validate_status_update(payload)
    payload["recording"]["status"] = "SLEEPING"
    with pytest.raises(AssertionError, match="recording/status"):
        validate_status_update(payload)


# recording.statusUpdate


@pytest.mark.parametrize(
    "index", range(len(PHASES)), ids=[f"{i}-{p.value}" for i, p in enumerate(PHASES)]
)
def test_every_transition_makes_a_valid_status_update(index: int) -> None:
    payload = status_update(REF, STATUS, index)
    validate_status_update(payload)
    assert payload["event"] == STATUS_UPDATE
    assert payload["meeting"] == {"id": "m1"}
    assert payload["recording"]["status"] == PHASES[index].value
    assert payload["recording"]["id"] == payload["recording"]["recordingId"] == REF.uid
    assert payload["recording"]["meetingId"] == "m1"


def test_the_invoked_event_has_no_started_time() -> None:
    recording = _recording(0)
    assert recording["status"] == "INVOKED"
    assert "startedTime" not in recording


def test_a_late_recording_event_describes_its_own_transition() -> None:
    # The status has reached UPLOADED, but the RECORDING event must not carry later fields.
    recording = _recording(3)
    assert recording["status"] == "RECORDING"
    assert recording["startedTime"] == "2026-03-02T10:01:00.000Z"
    for later in (
        "stoppedTime",
        "downloadUrl",
        "downloadUrlExpiry",
        "recordingDuration",
        "fileSize",
        "stopReason",
        "outputs",
    ):
        assert later not in recording


def test_the_uploading_event_has_the_stop_fields() -> None:
    recording = _recording(4)
    assert recording["status"] == "UPLOADING"
    assert recording["stoppedTime"] == "2026-03-02T10:04:00.000Z"
    assert recording["fileSize"] == COMPOSITE.bytes
    assert recording["recordingDuration"] == 150
    assert recording["stopReason"] == "STOPPED"
    assert recording["outputFileName"] == "standup_composite.mp4"
    assert "downloadUrl" not in recording


def test_the_uploaded_event_has_the_download_urls_and_every_output() -> None:
    recording = _recording(5)
    assert recording["downloadUrl"] == _url(COMPOSITE)
    assert recording["downloadUrlExpiry"] == "2026-03-09T10:00:00.000Z"
    outputs = {o["outputFileName"]: o for o in recording["outputs"]}
    assert set(outputs) == {
        "standup_composite.mp4",
        "standup_composite.part1.mp4",
        "alice.webm",
        "bob.webm",
    }
    alice = outputs["alice.webm"]
    assert alice["userId"] == "alice"
    assert alice["kind"] == "track"
    assert alice["downloadUrl"] == _url(ALICE)
    assert alice["downloadUrlExpiry"].endswith("Z")
    assert outputs["bob.webm"]["userId"] == "bob"
    assert outputs["standup_composite.part1.mp4"]["salvaged"] is True
    assert outputs["standup_composite.part1.mp4"]["downloadUrl"] == _url(SEGMENT)
    assert outputs["standup_composite.mp4"]["salvaged"] is False
    assert "userId" not in outputs["standup_composite.mp4"]


def test_an_uploaded_event_before_the_urls_are_issued_lists_outputs_without_urls() -> None:
    status = _status(downloads=[], download_url=None, download_url_expiry=None)
    recording = _recording(5, status)
    validate_status_update(status_update(REF, status, 5))
    assert "downloadUrl" not in recording
    assert all("downloadUrl" not in o for o in recording["outputs"])
    assert len(recording["outputs"]) == 4


def test_an_expired_recordings_uploaded_event_carries_no_urls() -> None:
    status = _status(expired=True)
    payload = status_update(REF, status, 5)
    validate_status_update(payload)
    recording = payload["recording"]
    assert "downloadUrl" not in recording
    assert "downloadUrlExpiry" not in recording
    assert "outputs" not in recording
    assert "http" not in json.dumps(payload)


def test_an_errored_event_carries_the_error() -> None:
    history = [
        Transition(phase=Phase.INVOKED, at=T0),
        Transition(phase=Phase.RECORDING, at=T0 + dt.timedelta(minutes=1)),
        Transition(phase=Phase.ERRORED, at=T0 + dt.timedelta(minutes=2)),
    ]
    status = _status(
        phase=Phase.ERRORED,
        history=history,
        stop_reason=StopReason.ERROR,
        error="the meeting's Janus room does not exist",
        downloads=[],
        download_url=None,
        download_url_expiry=None,
    )
    payload = status_update(REF, status, 2)
    validate_status_update(payload)
    recording = payload["recording"]
    assert recording["status"] == "ERRORED"
    assert recording["error"] == "the meeting's Janus room does not exist"
    assert recording["stopReason"] == "ERROR"
    assert "outputs" not in recording
    assert "error" not in _recording(1, status)


def test_a_tracks_only_recording_reports_no_composite_file() -> None:
    status = _status(outputs=[ALICE, BOB], downloads=[_download(ALICE), _download(BOB)])
    status = status.model_copy(update={"download_url": None, "download_url_expiry": None})
    uploading = status_update(REF, status, 4)
    validate_status_update(uploading)
    assert uploading["recording"]["fileSize"] == 0
    assert "outputFileName" not in uploading["recording"]
    uploaded = _recording(5, status)
    assert "downloadUrl" not in uploaded
    assert [o["userId"] for o in uploaded["outputs"]] == ["alice", "bob"]


# primary_composite


def test_the_primary_composite_is_the_first_whole_one() -> None:
    assert primary_composite([ALICE, SEGMENT, COMPOSITE, BOB]) is COMPOSITE


def test_a_salvaged_segment_is_the_primary_composite_only_without_a_whole_one() -> None:
    assert primary_composite([ALICE, SEGMENT]) is SEGMENT


def test_tracks_only_have_no_primary_composite() -> None:
    assert primary_composite([ALICE, BOB]) is None
    assert primary_composite([]) is None


# recording.transferUpdate


def test_a_transfer_update_reports_the_destinations_result() -> None:
    transfer = TransferStatus(
        index=1,
        destination="s3 http://127.0.0.1:8333 copies",
        state=TransferState.FAILED,
        attempts=5,
        bytes=1234,
        objects=2,
        error="AccessDenied",
    )
    payload = transfer_update(REF, STATUS, transfer)
    assert payload["event"] == TRANSFER_UPDATE == "recording.transferUpdate"
    assert payload["meeting"] == {"id": "m1"}
    assert payload["recording"]["id"] == REF.uid
    assert payload["recording"]["status"] == "UPLOADED"
    assert payload["transfer"] == {
        "index": 1,
        "destination": "s3 http://127.0.0.1:8333 copies",
        "state": "Failed",
        "attempts": 5,
        "bytes": 1234,
        "objects": 2,
        "error": "AccessDenied",
    }


def test_a_successful_transfer_update_has_no_error() -> None:
    transfer = TransferStatus(
        index=0, destination="s3 us-east-1 copies", state=TransferState.SUCCEEDED, attempts=1
    )
    payload = transfer_update(REF, STATUS, transfer)
    assert payload["transfer"]["state"] == "Succeeded"
    assert payload["transfer"]["attempts"] == 1
    assert "error" not in payload["transfer"]


# encode


def test_encode_is_compact_json_that_round_trips() -> None:
    payload = status_update(REF, STATUS, 5)
    payload["meeting"]["title"] = "café standup"
    body = encode(payload)
    assert isinstance(body, bytes)
    assert json.loads(body) == payload
    text = body.decode()
    assert ", " not in text
    assert ": " not in text
    assert "\n" not in text
    assert "café" in text  # UTF-8, not \u escapes
    assert body == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
