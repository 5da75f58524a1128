"""Place every decoded frame on the recorder's one clock (time.monotonic() seconds).

aiortc gives each track its own pts, starting at 0 (time bases 1/90000 video, 1/48000
audio), so pts alone cannot line up audio with video, or one participant with another.

- Within a stream, pts deltas are exact: `local(pts) = pts/rate + base`.
- Without a sender report the base is the smallest `arrival - pts/rate` seen: the least
  delayed frame, so jitter-buffer and decode delays do not push frames late.
- An RTCP sender report maps the stream's RTP clock to the sender's NTP clock. All streams of
  one participant share that clock, so their bases come from one offset (the smallest
  `arrival - sender_time` over all the participant's frames): audio and video of a person then
  keep the relation the sender (or the SFU) stamped, whatever each stream's arrival delay.

The minimum is taken over a sliding window, so the recorder follows slow clock drift.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["ParticipantClock", "SlidingMin", "StreamClock"]

_WINDOW_S = 30.0
_BUCKET_S = 1.0


@dataclass
class SlidingMin:
    """The minimum of values observed over the last `window_s` seconds (bucketed)."""

    window_s: float = _WINDOW_S
    _buckets: deque[tuple[float, float]] = field(default_factory=deque)  # (bucket start, min)

    def add(self, now: float, value: float) -> None:
        start = math.floor(now / _BUCKET_S) * _BUCKET_S
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1] = (start, min(self._buckets[-1][1], value))
        else:
            self._buckets.append((start, value))
        while self._buckets and self._buckets[0][0] < start - self.window_s:
            self._buckets.popleft()

    @property
    def value(self) -> float | None:
        return min(v for _, v in self._buckets) if self._buckets else None


@dataclass
class StreamClock:
    """One stream's pts → local time, refined by every frame and sender report."""

    rate: int
    arrival_base: SlidingMin = field(default_factory=SlidingMin)  # min(arrival - pts/rate)
    sender_base: float | None = None  # sender_time(pts) = sender_base + pts/rate

    def observe(self, pts: int, arrival: float) -> None:
        self.arrival_base.add(arrival, arrival - pts / self.rate)

    def sender_report(self, ntp_seconds: float, pts: int) -> None:
        """An RTCP SR: the sender's clock read `ntp_seconds` when its RTP clock was at `pts`."""
        self.sender_base = ntp_seconds - pts / self.rate

    def skew(self) -> float | None:
        """min(arrival - sender_time) over this stream's frames: the sender→local offset."""
        base = self.arrival_base.value
        if base is None or self.sender_base is None:
            return None
        return base - self.sender_base


@dataclass
class ParticipantClock:
    """The streams of one participant; audio and video share the sender→local offset."""

    streams: dict[str, StreamClock] = field(default_factory=dict)

    def stream(self, kind: str, rate: int) -> StreamClock:
        clock = self.streams.get(kind)
        if clock is None or clock.rate != rate:
            clock = self.streams[kind] = StreamClock(rate)
        return clock

    def reset(self, kind: str) -> None:
        """A new source on this stream (an SFU re-used its m-line): forget its timing."""
        self.streams.pop(kind, None)

    def local_time(self, kind: str, pts: int) -> float | None:
        clock = self.streams.get(kind)
        if clock is None:
            return None
        skews = [s for c in self.streams.values() if (s := c.skew()) is not None]
        if clock.sender_base is not None and skews:
            return clock.sender_base + min(skews) + pts / clock.rate
        base = clock.arrival_base.value
        return None if base is None else base + pts / clock.rate
