"""Paint participants' frames into one yuv420p canvas, never leaving yuv420p.

Each incoming frame is scaled (swscale, one thread) once per tile size and cached, so a
frame shown for several output ticks is scaled once. Empty areas are black.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from av import VideoFrame
from av.video.reformatter import Interpolation

from tapedeck_bot.composite.layout import Cell, fit

__all__ = ["Compositor"]

_BLACK_Y, _NEUTRAL_UV = 16, 128


def _plane(frame: VideoFrame, index: int) -> np.ndarray:
    """A plane as a (height, width) view, skipping the line padding."""
    plane = frame.planes[index]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
    view: np.ndarray = rows[: plane.height, : plane.width]
    return view


class Compositor:
    """Paints into one output frame, re-used every tick: the encoders (libx264, libvpx)
    copy a frame in when it is sent, so the next tick may paint over it. The background is
    painted again only when the painted rectangles change."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._frame = VideoFrame(width, height, "yuv420p")
        self._y, self._u, self._v = (_plane(self._frame, i) for i in range(3))
        self._painted: tuple[tuple[int, int, int, int], ...] | None = None
        self._scaled: dict[str, tuple[VideoFrame, tuple[int, int], VideoFrame]] = {}

    def _scale(self, key: str, frame: VideoFrame, width: int, height: int) -> VideoFrame:
        cached = self._scaled.get(key)
        if cached is not None and cached[0] is frame and cached[1] == (width, height):
            return cached[2]
        if (frame.width, frame.height) == (width, height) and frame.format.name == "yuv420p":
            scaled = frame
        else:
            scaled = frame.reformat(
                width=width,
                height=height,
                format="yuv420p",
                interpolation=Interpolation.BILINEAR,
                threads=1,
            )
        self._scaled[key] = (frame, (width, height), scaled)
        return scaled

    def compose(self, tiles: Sequence[tuple[Cell, VideoFrame | None]]) -> VideoFrame:
        """The output frame; a cell without a frame stays black."""
        for key in set(self._scaled) - {cell.participant for cell, _ in tiles}:
            del self._scaled[key]
        shown = [
            (cell, frame, fit(cell, frame.width, frame.height))
            for cell, frame in tiles
            if frame is not None
        ]
        painted = tuple(rect for _, _, rect in shown)
        if painted != self._painted:  # else every pixel outside them is black already
            self._y.fill(_BLACK_Y)
            self._u.fill(_NEUTRAL_UV)
            self._v.fill(_NEUTRAL_UV)
            self._painted = painted
        for cell, frame, (x, y, w, h) in shown:
            scaled = self._scale(cell.participant, frame, w, h)
            self._y[y : y + h, x : x + w] = _plane(scaled, 0)
            self._u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = _plane(scaled, 1)
            self._v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = _plane(scaled, 2)
        return self._frame
