"""When a recording pauses, resumes and stops: pure decisions on the media clock.

Media time is seconds since the recording started. Paused spans are cut from the outputs,
so "recorded" time is media time less the paused spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tapedeck_bot.contract import StopReason

__all__ = ["PausedSpan", "RecordingControl"]


@dataclass
class PausedSpan:
    start: float
    end: float | None = None  # None: still paused

    def covers(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def length_before(self, until: float) -> float:
        end = until if self.end is None else min(self.end, until)
        return max(0.0, end - self.start)


@dataclass
class RecordingControl:
    max_seconds: float
    idle_timeout_s: float
    paused_spans: list[PausedSpan] = field(default_factory=list)
    stop_at: float | None = None
    stop_reason: StopReason | None = None
    empty_since: float | None = 0.0  # media time the room last became empty

    @property
    def paused(self) -> bool:
        return bool(self.paused_spans) and self.paused_spans[-1].end is None

    def pause(self, at: float) -> None:
        if not self.paused and self.stop_at is None:
            self.paused_spans.append(PausedSpan(at))

    def resume(self, at: float) -> None:
        if self.paused:
            self.paused_spans[-1].end = at

    def is_paused_at(self, t: float) -> bool:
        return any(span.covers(t) for span in self.paused_spans)

    def recorded(self, until: float) -> float:
        """Media time in [0, until) that is not paused."""
        return until - sum(span.length_before(until) for span in self.paused_spans)

    def stop(self, at: float, reason: StopReason) -> None:
        if self.stop_at is None:
            self.stop_at, self.stop_reason = at, reason
            self.resume(at)

    def room_occupancy(self, at: float, present: int) -> None:
        if present:
            self.empty_since = None
        elif self.empty_since is None:
            self.empty_since = at

    def check(self, now: float) -> StopReason | None:
        """Stop for max length or an empty room, at `now`; returns the reason if it stopped."""
        if self.stop_at is not None:
            return None
        if self.recorded(now) >= self.max_seconds:
            # Stop exactly at the limit, not at the moment this was noticed.
            self.stop(now - (self.recorded(now) - self.max_seconds), StopReason.MAX_SECONDS)
        elif self.empty_since is not None and now - self.empty_since >= self.idle_timeout_s:
            self.stop(now, StopReason.ALL_PEERS_LEFT)
        return self.stop_reason if self.stop_at is not None else None
