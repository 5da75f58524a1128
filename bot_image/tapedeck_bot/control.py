"""When a recording pauses, resumes and stops: pure decisions on the media clock.

Media time is seconds since the recording started. Paused spans are cut from the outputs,
so "recorded" time is media time less the paused spans.

`RecordingControl` is changed on the asyncio thread only. Each change replaces its `state`,
an immutable `ControlState`, and the pipeline's threads read that snapshot: one reference
read, never a half-made change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from tapedeck_bot.contract import StopReason

__all__ = ["ControlState", "ControlView", "PausedSpan", "RecordingControl"]


@dataclass(frozen=True)
class PausedSpan:
    start: float
    end: float | None = None  # None: still paused

    def covers(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def length_before(self, until: float) -> float:
        end = until if self.end is None else min(self.end, until)
        return max(0.0, end - self.start)


@dataclass(frozen=True)
class ControlState:
    paused_spans: tuple[PausedSpan, ...] = ()
    stop_at: float | None = None
    stop_reason: StopReason | None = None

    @property
    def paused(self) -> bool:
        return bool(self.paused_spans) and self.paused_spans[-1].end is None

    def is_paused_at(self, t: float) -> bool:
        return any(span.covers(t) for span in self.paused_spans)

    def recorded(self, until: float) -> float:
        """Media time in [0, until) that is not paused."""
        return until - sum(span.length_before(until) for span in self.paused_spans)

    def stopped_by(self, t: float) -> bool:
        return self.stop_at is not None and t >= self.stop_at


# How a stage reads the latest state: a snapshot per call.
ControlView = Callable[[], ControlState]


class RecordingControl:
    def __init__(self, *, max_seconds: float, idle_timeout_s: float) -> None:
        self.max_seconds, self.idle_timeout_s = max_seconds, idle_timeout_s
        self.state = ControlState()
        self.empty_since: float | None = 0.0  # media time the room last became empty

    # Read-throughs, for the asyncio thread's own decisions.
    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def stop_at(self) -> float | None:
        return self.state.stop_at

    @property
    def stop_reason(self) -> StopReason | None:
        return self.state.stop_reason

    def is_paused_at(self, t: float) -> bool:
        return self.state.is_paused_at(t)

    def recorded(self, until: float) -> float:
        return self.state.recorded(until)

    def pause(self, at: float) -> None:
        if not self.paused and self.stop_at is None:
            spans = (*self.state.paused_spans, PausedSpan(at))
            self.state = dataclasses.replace(self.state, paused_spans=spans)

    def resume(self, at: float) -> None:
        if self.paused:
            spans = self.state.paused_spans
            closed = dataclasses.replace(spans[-1], end=at)
            self.state = dataclasses.replace(self.state, paused_spans=(*spans[:-1], closed))

    def stop(self, at: float, reason: StopReason) -> None:
        if self.stop_at is None:
            self.resume(at)
            self.state = dataclasses.replace(self.state, stop_at=at, stop_reason=reason)

    def room_empty_since(self, since: float | None) -> None:
        """None while anyone is present; else when the last one left (0: nobody came). A
        leave may be dated back (a stream that went silent), and the idle timeout with it."""
        self.empty_since = since

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
