"""What `kubectl tapedeck status` shows: pure functions of a Recording, its Events and the
time, rendered by rich."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tapedeck_bot.contract import Phase, RecordingStatus

__all__ = ["FINAL_PHASES", "human_bytes", "recorded_seconds", "settled", "status_view"]

FINAL_PHASES = frozenset({Phase.UPLOADED, Phase.ERRORED})
_PHASE_STYLE = {
    Phase.INVOKED: "yellow",
    Phase.RECORDING: "bold red",
    Phase.PAUSED: "magenta",
    Phase.UPLOADING: "cyan",
    Phase.UPLOADED: "bold green",
    Phase.ERRORED: "bold white on red",
}
_EVENTS_SHOWN = 6


def settled(status: RecordingStatus) -> bool:
    """Nothing more to wait for: ERRORED, or UPLOADED with a URL for every output (none for
    an expired or empty recording; a tracks-only one has no composite `downloadUrl`)."""
    if status.phase is Phase.ERRORED:
        return True
    if status.phase is not Phase.UPLOADED:
        return False
    if status.expired or not status.outputs:
        return True
    presigned = {download.key for download in status.downloads}
    return all(output.key in presigned for output in status.outputs)


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def recorded_seconds(status: RecordingStatus, now: dt.datetime) -> float:
    """The bot's own figure once it has one; while it records, the time since it started
    (pauses included: the bot reports the recorded time at the end)."""
    if status.duration_seconds is not None:
        return status.duration_seconds
    if status.started_at is None:
        return 0.0
    return max(0.0, (now - status.started_at).total_seconds())


def _age(at: dt.datetime | None, now: dt.datetime) -> str:
    if at is None:
        return "-"
    seconds = int(max(0.0, (now - at).total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def _event_time(event: Mapping[str, Any]) -> dt.datetime | None:
    raw = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    return dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None


def status_view(
    recording: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: dt.datetime
) -> RenderableType:
    meta, spec = recording["metadata"], recording.get("spec") or {}
    status = RecordingStatus.model_validate(recording.get("status") or {})
    phase = status.phase
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    # Every string from the cluster goes in as Text: rich would read "[...]" in it as markup.
    summary.add_row("recording", Text(f"{meta['namespace']}/{meta['name']}"))
    summary.add_row("meeting", Text(str((spec.get("meeting") or {}).get("id", "-"))))
    summary.add_row(
        "phase",
        Text(phase.value, style=_PHASE_STYLE[phase]) if phase else Text("(pending)", style="dim"),
    )
    summary.add_row("state", Text(str(spec.get("state", "Recording"))))
    summary.add_row("duration", f"{recorded_seconds(status, now):.0f} s")
    uploaded = sum(output.bytes for output in status.outputs)
    summary.add_row("uploaded", f"{human_bytes(uploaded)} in {len(status.outputs)} file(s)")
    if status.stop_reason:
        summary.add_row("stop reason", Text(status.stop_reason.value))
    if status.error:
        summary.add_row("error", Text(status.error, style="red"))
    if status.degraded:
        summary.add_row("degraded", Text(status.degraded, style="yellow"))
    if status.expired:
        summary.add_row("download", Text("expired: the retention period is over"))
    elif status.downloads:
        summary.add_row("download", Text(f"kubectl tapedeck download {meta['name']}"))

    people = Table(title="participants", title_justify="left", expand=False)
    for column in ("user", "name", "joined", "left"):
        people.add_column(column)
    for person in status.participants:
        people.add_row(
            Text(person.user_id),
            Text(person.display_name or ""),
            _age(person.joined_at, now) + " ago",
            _age(person.left_at, now) + " ago" if person.left_at else "",
        )

    recent = sorted(events, key=lambda e: _event_time(e) or now)[-_EVENTS_SHOWN:]
    log = Table(title="events", title_justify="left", expand=False)
    for column in ("age", "type", "reason", "message"):
        log.add_column(column)
    for event in recent:
        warning = event.get("type") == "Warning"
        log.add_row(
            _age(_event_time(event), now),
            Text(str(event.get("type", "")), style="yellow" if warning else ""),
            Text(str(event.get("reason", ""))),
            Text(str(event.get("message", ""))),
        )
    return Group(summary, people, log)
