"""RealtimeKit's response bodies, built from a Recording: pure functions, no I/O.

RealtimeKit answers `{"success": true, "data": {...}}` or `{"success": false, "error":
{"code", "message"}}`; a recording object is snake_case (the webhooks' statusUpdate body is
camelCase: `webhooks/payloads.py`). Fields tapedeck has no counterpart for are null, as
RealtimeKit sends them before they are known: `session_id` (a RealtimeKit meeting session)
and `audio_download_url` (RealtimeKit's separate audio file).
"""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Mapping
from typing import Any

from tapedeck_bot.contract import Phase, RecordingStatus, StopReason
from tapedeck_operator.webhooks.payloads import primary_composite, timestamp

__all__ = ["error_body", "recording_detail", "recording_object", "success_body"]

# RealtimeKit's stop reasons are API_CALL, INTERNAL_ERROR and ALL_PEERS_LEFT. A recording that
# reached its maxSeconds was ended by the caller's own limit, as RealtimeKit reports it.
_STOP_REASONS = {
    StopReason.STOPPED: "API_CALL",
    StopReason.MAX_SECONDS: "API_CALL",
    StopReason.ALL_PEERS_LEFT: "ALL_PEERS_LEFT",
    StopReason.TERMINATED: "INTERNAL_ERROR",
    StopReason.ERROR: "INTERNAL_ERROR",
}


def _time(at: dt.datetime | None) -> str | None:
    return timestamp(at) if at is not None else None


def recording_object(recording: Mapping[str, Any]) -> dict[str, Any]:
    """RealtimeKit's recording (as lists and the active recording carry it) for a Recording
    as the API server returns it. Before the operator and the bot have written anything it is
    INVOKED."""
    metadata = recording["metadata"]
    status = RecordingStatus.model_validate(recording.get("status") or {})
    composite = primary_composite(status.outputs)
    expired = status.expired
    data: dict[str, Any] = {
        "id": metadata["uid"],
        "session_id": None,
        "status": (status.phase or Phase.INVOKED).value,
        "invoked_time": timestamp(dt.datetime.fromisoformat(metadata["creationTimestamp"])),
        "started_time": _time(status.started_at),
        "stopped_time": _time(status.stopped_at),
        "recording_duration": round(status.duration_seconds or 0),
        "output_file_name": posixpath.basename(composite.key) if composite else "",
        "file_size": composite.bytes if composite and not expired else None,
        "download_url": None if expired else status.download_url,
        "download_url_expiry": None if expired else _time(status.download_url_expiry),
        "audio_download_url": None,
    }
    return data


def recording_detail(recording: Mapping[str, Any]) -> dict[str, Any]:
    """The recording with its detail fields, as one recording's answers carry it."""
    data = recording_object(recording)
    data["start_reason"] = {"reason": "API_CALL"}
    stop_reason = (recording.get("status") or {}).get("stopReason")
    if stop_reason is not None:
        data["stop_reason"] = {"reason": _STOP_REASONS[StopReason(stop_reason)]}
    return data


def success_body(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}


def error_body(code: int, message: str) -> dict[str, Any]:
    """RealtimeKit's error shape; `code` is the HTTP status."""
    return {"success": False, "error": {"code": code, "message": message}}
