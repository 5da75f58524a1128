"""Per-participant buffers of the composite stage, which alone owns them (no locks).

Times are seconds on the recording's media clock (0 = recording start). Audio is kept as
48 kHz stereo s16 samples indexed from the recording start, so silence is simply what was
never written, and a late joiner is padded with silence by construction.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from av import VideoFrame

__all__ = ["AUDIO_RATE", "AudioTimeline", "VideoBuffer"]

AUDIO_RATE = 48000
_SNAP_SAMPLES = 480  # 10 ms: closer than this to the previous write, a frame continues it


class VideoBuffer:
    """Frames in arrival order; `frame_at(t)` is the newest frame not after t."""

    def __init__(self, max_frames: int = 90) -> None:
        """At most `max_frames` (3 s at 30 fps; a 640x360 frame is 345 KB) wait to be shown;
        an encoder that far behind drops the oldest."""
        self._frames: deque[tuple[float, VideoFrame]] = deque(maxlen=max_frames)
        self._current: tuple[float, VideoFrame] | None = None

    def push(self, at: float, frame: VideoFrame) -> None:
        self._frames.append((at, frame))

    def frame_at(self, t: float, *, stale_after: float) -> VideoFrame | None:
        """The frame to show at `t`, or None when there is none from the last `stale_after` s."""
        while self._frames and self._frames[0][0] <= t:
            self._current = self._frames.popleft()
        if self._current is None or t - self._current[0] > stale_after:
            return None
        return self._current[1]


class AudioTimeline:
    """A ring of `seconds` of stereo samples, written by position and consumed in order."""

    def __init__(self, seconds: float = 20.0) -> None:
        self._size = int(seconds * AUDIO_RATE)
        self._ring = np.zeros((self._size, 2), np.int16)
        self._read = 0  # next sample index to be read
        self._next_write: int | None = None

    def write(self, at: float, samples: np.ndarray) -> None:
        """Place `samples` (n x 2 int16) to start at media time `at`."""
        start = round(at * AUDIO_RATE)
        if self._next_write is not None and abs(start - self._next_write) < _SNAP_SAMPLES:
            start = self._next_write  # keep a stream gapless despite clock refinements
        end = start + len(samples)
        lo, hi = max(start, self._read), min(end, self._read + self._size)
        for ring, source in self._spans(lo, hi):
            self._ring[ring] = samples[source.start + lo - start : source.stop + lo - start]
        self._next_write = end

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples [start, start+count) (zeros where nothing was written); frees them."""
        out = np.zeros((count, 2), np.int16)
        lo = max(start, self._read)
        for ring, target in self._spans(lo, start + count):
            out[target.start + lo - start : target.stop + lo - start] = self._ring[ring]
            self._ring[ring] = 0
        self._read = max(self._read, start + count)
        return out

    def _spans(self, lo: int, hi: int) -> list[tuple[slice, slice]]:
        """Samples [lo, hi) as (ring slice, offset slice from lo): one, or two where the
        ring wraps. Slices, not index arrays: this runs 50 times a second per person."""
        if lo >= hi:
            return []
        first = lo % self._size
        head = min(hi - lo, self._size - first)
        spans = [(slice(first, first + head), slice(0, head))]
        if head < hi - lo:
            spans.append((slice(0, hi - lo - head), slice(head, hi - lo)))
        return spans
