"""Synthetic participant media: a known colour and a known tone, or a sync flash and click.

Both tracks of a participant are paced from one start instant, so that video frame n and
audio sample s are sent at `t0 + n/fps` and `t0 + s/48000`: in `sync` mode the white flash
(frame n % fps == 0) and the click (the first 20 ms of every second) leave at the same time.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass

import numpy as np
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame, VideoFrame

__all__ = ["COLORS", "ColorTrack", "MediaClock", "ToneTrack", "rgb_to_yuv"]

AUDIO_RATE = 48000
AUDIO_FRAME = 960  # 20 ms
VIDEO_CLOCK = fractions.Fraction(1, 90000)

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 30),
    "green": (30, 180, 30),
    "blue": (30, 30, 200),
    "yellow": (210, 210, 30),
    "magenta": (200, 30, 200),
    "cyan": (30, 200, 200),
    "orange": (230, 120, 20),
    "purple": (110, 40, 160),
    "grey": (128, 128, 128),
}


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range, as yuv420p frames carry it."""
    r, g, b = rgb
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return round(y), round(u), round(v)


@dataclass
class MediaClock:
    """The shared start instant of one participant's tracks (time.time() seconds)."""

    t0: float | None = None

    def start(self) -> float:
        if self.t0 is None:
            self.t0 = time.time()
        return self.t0

    async def wait_until(self, offset_s: float) -> None:
        delay = self.start() + offset_s - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


class ColorTrack(MediaStreamTrack):
    """Solid colour with a moving white bar; in `sync` mode the colour dimmed to a third, with
    a white frame each second. During `off` (seconds after the start) no frame is sent, as
    when a camera is turned off."""

    kind = "video"

    def __init__(
        self,
        rgb: tuple[int, int, int],
        clock: MediaClock,
        *,
        width: int = 640,
        height: int = 360,
        fps: int = 30,
        sync: bool = False,
        off: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.width, self.height, self.fps, self.sync = width, height, fps, sync
        self.off = off
        self.clock = clock
        shade = (rgb[0] // 3, rgb[1] // 3, rgb[2] // 3) if sync else rgb
        y, u, v = rgb_to_yuv(shade)
        self._y = np.full((height, width), y, np.uint8)
        self._uv = np.concatenate(
            [np.full(height // 4 * width, u, np.uint8), np.full(height // 4 * width, v, np.uint8)]
        )
        self._uv = self._uv.reshape(height // 2, width)
        white_luma = rgb_to_yuv((255, 255, 255))[0]  # white has neutral chroma (128)
        self._white = np.concatenate(
            [
                np.full((height, width), white_luma, np.uint8),
                np.full((height // 2, width), 128, np.uint8),
            ]
        )
        self._n = 0

    async def recv(self) -> VideoFrame:
        if self.off is not None and self.off[0] <= self._n / self.fps < self.off[1]:
            self._n = round(self.off[1] * self.fps)  # the camera is off until then
        await self.clock.wait_until(self._n / self.fps)
        n = self._n
        self._n += 1
        if self.sync and n % self.fps == 0:
            image = self._white
        else:
            luma = self._y.copy()
            if not self.sync:
                x = (n * 8) % (self.width - 40)
                luma[:, x : x + 40] = 235
            image = np.concatenate([luma, self._uv])
        frame = VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = round(n * 90000 / self.fps)
        frame.time_base = VIDEO_CLOCK
        return frame


class ToneTrack(MediaStreamTrack):
    """A continuous sine at `freq` Hz; in `sync` mode silence with a 20 ms click (a burst at
    `freq`, so each participant's clicks can be told apart) each second."""

    kind = "audio"

    def __init__(
        self, freq: float, clock: MediaClock, *, amplitude: float = 0.3, sync: bool = False
    ) -> None:
        super().__init__()
        self.freq, self.amplitude, self.sync = freq, amplitude, sync
        self.clock = clock
        self._sample = 0

    async def recv(self) -> AudioFrame:
        await self.clock.wait_until(self._sample / AUDIO_RATE)
        start = self._sample
        self._sample += AUDIO_FRAME
        n = np.arange(start, start + AUDIO_FRAME)
        if self.sync:
            click = (start % AUDIO_RATE) == 0
            signal = (
                0.8 * np.sin(2 * np.pi * self.freq * n / AUDIO_RATE) if click else np.zeros(len(n))
            )
        else:
            signal = self.amplitude * np.sin(2 * np.pi * self.freq * n / AUDIO_RATE)
        pcm = (signal * 32767).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.pts = start
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame
