"""Webhook bodies: RealtimeKit's camelCase `recording.statusUpdate`, and `recording.transferUpdate`
for the copies to the user's buckets. Pure: built from the Recording's status."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tapedeck_bot.contract import Download, Output, Phase, RecordingStatus, TransferStatus

__all__ = [
    "STATUS_UPDATE",
    "TRANSFER_UPDATE",
    "RecordingRef",
    "encode",
    "primary_composite",
    "status_update",
    "transfer_update",
]

STATUS_UPDATE = "recording.statusUpdate"
TRANSFER_UPDATE = "recording.transferUpdate"
_ENDED = (Phase.UPLOADING, Phase.UPLOADED, Phase.ERRORED)


@dataclass(frozen=True)
class RecordingRef:
    """Which Recording an event is about."""

    uid: str
    namespace: str
    name: str
    meeting_id: str


def timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def primary_composite(outputs: Sequence[Output]) -> Output | None:
    """The composite that RealtimeKit's single-file fields describe: the first one recorded
    whole; segments salvaged from a lost pod are listed beside it."""
    composites = [o for o in outputs if o.kind == "composite"]
    whole = [o for o in composites if not o.salvaged]
    return next(iter(whole or composites), None)


def _recording(ref: RecordingRef, phase: Phase) -> dict[str, Any]:
    return {
        "id": ref.uid,
        "recordingId": ref.uid,
        "meetingId": ref.meeting_id,
        "status": phase.value,
        "namespace": ref.namespace,
        "name": ref.name,
    }


def _download(download: Download | None, output: Output) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": output.kind,
        "outputFileName": posixpath.basename(output.key),
        "fileSize": output.bytes,
        "salvaged": output.salvaged,
    }
    if output.user_id is not None:
        entry["userId"] = output.user_id
    if download is not None:
        entry["downloadUrl"] = download.url
        entry["downloadUrlExpiry"] = timestamp(download.expires_at)
    return entry


def status_update(ref: RecordingRef, status: RecordingStatus, index: int) -> dict[str, Any]:
    """The event for `status.history[index]`, as it was then: a late RECORDING event (the
    operator was down) still says RECORDING and carries no stop or download fields."""
    phase = status.history[index].phase
    recording = _recording(ref, phase)
    composite = primary_composite(status.outputs)
    if composite is not None:
        recording["outputFileName"] = posixpath.basename(composite.key)
    if status.started_at is not None and phase is not Phase.INVOKED:
        recording["startedTime"] = timestamp(status.started_at)
    if phase in _ENDED:
        if status.stopped_at is not None:
            recording["stoppedTime"] = timestamp(status.stopped_at)
        recording["recordingDuration"] = round(status.duration_seconds or 0)
        recording["fileSize"] = composite.bytes if composite is not None else 0
        if status.stop_reason is not None:
            recording["stopReason"] = status.stop_reason.value
    if phase is Phase.ERRORED and status.error:
        recording["error"] = status.error
    if phase is Phase.UPLOADED and not status.expired:
        urls = {d.key: d for d in status.downloads}
        if status.download_url is not None and status.download_url_expiry is not None:
            recording["downloadUrl"] = status.download_url
            recording["downloadUrlExpiry"] = timestamp(status.download_url_expiry)
        recording["outputs"] = [_download(urls.get(o.key), o) for o in status.outputs]
    return {"event": STATUS_UPDATE, "recording": recording, "meeting": {"id": ref.meeting_id}}


def transfer_update(
    ref: RecordingRef, status: RecordingStatus, transfer: TransferStatus
) -> dict[str, Any]:
    """A destination's final result: every object copied, or the error it gave up on."""
    phase = status.phase or Phase.UPLOADED
    result: dict[str, Any] = {
        "index": transfer.index,
        "destination": transfer.destination,
        "state": transfer.state.value,
        "attempts": transfer.attempts,
        "bytes": transfer.bytes,
        "objects": transfer.objects,
    }
    if transfer.error is not None:
        result["error"] = transfer.error
    return {
        "event": TRANSFER_UPDATE,
        "recording": _recording(ref, phase),
        "transfer": result,
        "meeting": {"id": ref.meeting_id},
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
