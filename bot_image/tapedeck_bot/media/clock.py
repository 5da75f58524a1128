"""Place every frame on the recorder's one clock (its `Clock.monotonic()` seconds).

Only the placement stage uses these: they are not thread-safe, and need not be.

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

__all__ = ["ParticipantClock", "Segment", "SlidingMin", "StreamClock"]

_WINDOW_S = 30.0
_BUCKET_S = 1.0
_JUMP_S = 1.0  # jitter stays far below this; a timestamp jump does not
_KEPT_SEGMENTS = 4
_REMEMBERED_FRAMES = 256  # encoded frames whose segment a decoded twin may still ask for


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
class Segment:
    """A run of frames whose pts follow one RTP timeline."""

    arrival_base: SlidingMin = field(default_factory=SlidingMin)  # min(arrival - pts/rate)
    sender_base: float | None = None  # sender_time(pts) = sender_base + pts/rate

    def skew(self) -> float | None:
        """min(arrival - sender_time) over the segment's frames: the sender→local offset."""
        base = self.arrival_base.value
        if base is None or self.sender_base is None:
            return None
        return base - self.sender_base


@dataclass
class StreamClock:
    """One stream's pts → local time, refined by every frame and sender report.

    An SFU may jump a stream's timestamps: Janus continues the old timeline when it points a
    recycled m-line at a new feed, then jumps to the new feed's own a moment later. A frame
    whose `arrival - pts/rate` is more than `_JUMP_S` away from the segment's base starts a
    new segment; frames keep the segment they were observed in, so each is placed by the
    timeline it belongs to.
    """

    rate: int
    segments: list[Segment] = field(default_factory=lambda: [Segment()])
    first: int = 0  # the number of segments[0]; older ones were dropped
    follows_encoded: bool = False  # observed by encoded frames, which arrive before decoding
    _last_pts: int | None = None
    _early_report: tuple[float, int] | None = None
    _segment_of: dict[int, int] = field(default_factory=dict)  # encoded pts -> segment

    @property
    def current(self) -> int:
        return self.first + len(self.segments) - 1

    def observe(self, pts: int, arrival: float) -> int:
        """Record a frame; returns its segment."""
        value = arrival - pts / self.rate
        base = self.segments[-1].arrival_base.value
        if base is not None and abs(value - base) > _JUMP_S:
            self.segments.append(Segment())
            dropped = max(0, len(self.segments) - _KEPT_SEGMENTS)
            del self.segments[:dropped]
            self.first += dropped
            if self._early_report and self._near(self._early_report[1], pts):
                self.segments[-1].sender_base = self._sender_base(*self._early_report)
            self._early_report = None
        self.segments[-1].arrival_base.add(arrival, value)
        self._last_pts = pts
        return self.current

    def observe_encoded(self, pts: int, arrival: float) -> int:
        """Record a frame as sent; its decoded twin (same pts) will get the same segment."""
        self.follows_encoded = True
        segment = self._segment_of[pts] = self.observe(pts, arrival)
        if len(self._segment_of) > _REMEMBERED_FRAMES:
            del self._segment_of[next(iter(self._segment_of))]
        return segment

    def observe_decoded(self, pts: int, arrival: float) -> int:
        """Record a decoded frame. When the stream is also delivered encoded, the encoded
        frame (arriving earlier, with less delay) already observed it: take its segment."""
        if self.follows_encoded:
            return self._segment_of.get(pts, self.current)
        return self.observe(pts, arrival)

    def sender_report(self, ntp_seconds: float, pts: int) -> None:
        """An RTCP SR: the sender's clock read `ntp_seconds` when its RTP clock was at `pts`.

        Reports are handled as they arrive, frames after decoding: a report already on a
        jumped timeline is kept until the first frame of that timeline starts its segment.
        """
        if self._last_pts is None or self._near(pts, self._last_pts):
            self.segments[-1].sender_base = self._sender_base(ntp_seconds, pts)
        else:
            self._early_report = (ntp_seconds, pts)

    def _sender_base(self, ntp_seconds: float, pts: int) -> float:
        return ntp_seconds - pts / self.rate

    def _near(self, pts: int, other: int) -> bool:
        return abs(pts - other) / self.rate <= _JUMP_S

    def segment(self, index: int) -> Segment | None:
        """Segment `index` (as returned by observe), if still kept."""
        offset = index - self.first
        return self.segments[offset] if 0 <= offset < len(self.segments) else None


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

    def local_time(
        self,
        kind: str,
        pts: int,
        segment: int | None = None,
        *,
        stream: StreamClock | None = None,
    ) -> float | None:
        """The local time of a frame of segment `segment` (default: the current one) of
        `stream` (default: the kind's current stream, which a source change replaces)."""
        clock = stream or self.streams.get(kind)
        if clock is None:
            return None
        seg = clock.segment(clock.current if segment is None else segment)
        if seg is None:
            return None
        skews = [s for c in self.streams.values() if (s := c.segments[-1].skew()) is not None]
        if seg.sender_base is not None and skews:
            return seg.sender_base + min(skews) + pts / clock.rate
        base = seg.arrival_base.value
        return None if base is None else base + pts / clock.rate
