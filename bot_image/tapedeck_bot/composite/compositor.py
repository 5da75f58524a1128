"""Paint participants' frames into one yuv420p canvas, never leaving yuv420p.

Each incoming frame is scaled (swscale, one thread) once per tile size and cached, so a
frame shown for several output ticks is scaled once. Empty areas are black. Someone without
current video gets an initials tile; each tile gets its name label and the speaker a border
(`overlays.py`), all rendered once and cached; the watermark (`watermark.py`) goes on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from av import VideoFrame
from av.video.reformatter import Interpolation

from tapedeck_bot.composite.layout import Cell, even, fit
from tapedeck_bot.composite.overlays import (
    Overlay,
    avatar,
    blend,
    label,
    label_height,
    paint_border,
)
from tapedeck_bot.composite.watermark import Stamp

__all__ = ["EVERYTHING_SHOWN", "Compositor", "Presentation", "Tile"]

_BLACK_Y, _NEUTRAL_UV = 16, 128
_AVATAR_ASPECT = (16, 9)


@dataclass(frozen=True)
class Presentation:
    """What is drawn over the video: `composite.labels`, `.speakerHighlight`, `.watermark`."""

    labels: bool = True
    speaker_highlight: bool = True
    watermark: Stamp | None = None


EVERYTHING_SHOWN = Presentation()


@dataclass(frozen=True)
class Tile:
    """A participant's cell, their current frame (None: no video now) and their name."""

    cell: Cell
    frame: VideoFrame | None
    name: str
    user_id: str


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

    def __init__(
        self, width: int, height: int, presentation: Presentation = EVERYTHING_SHOWN
    ) -> None:
        self.width, self.height = width, height
        self.presentation = presentation
        self._frame = VideoFrame(width, height, "yuv420p")
        self._y, self._u, self._v = (_plane(self._frame, i) for i in range(3))
        self._painted: tuple[tuple[int, int, int, int], ...] | None = None
        self._scaled: dict[str, tuple[VideoFrame, tuple[int, int], VideoFrame]] = {}
        self._labels: dict[tuple[str, int, int], Overlay] = {}
        self._avatars: dict[tuple[str, str, int, int], VideoFrame] = {}

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

    def compose(self, tiles: Sequence[Tile], speaker: str | None = None) -> VideoFrame:
        """The output frame; `speaker` (a participant) gets a border when highlighted."""
        self._forget_unseen(tiles)
        shown = [(tile, self._picture(tile)) for tile in tiles]
        painted = tuple(rect for _, (_, rect) in shown)
        if painted != self._painted:  # else every pixel outside them is black already
            self._background(0, 0, self.width, self.height)
            self._painted = painted
        watermark = self.presentation.watermark
        if watermark is not None:
            # It is blended every tick: a blend over the last tick's would creep toward its
            # colours where no tile is painted again, so what is under it is background first.
            mark = watermark.overlay
            self._background(watermark.x, watermark.y, mark.width, mark.height)
        planes = (self._y, self._u, self._v)
        outlined = speaker if self.presentation.speaker_highlight and len(tiles) > 1 else None
        for tile, (picture, (x, y, w, h)) in shown:
            scaled = self._scale(tile.cell.participant, picture, w, h)
            self._y[y : y + h, x : x + w] = _plane(scaled, 0)
            self._u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = _plane(scaled, 1)
            self._v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = _plane(scaled, 2)
            if self.presentation.labels:
                self._label(tile.name, (x, y, w, h))
            if tile.cell.participant == outlined:
                paint_border(planes, (x, y, w, h), min(w, h) // 60)
        if watermark is not None:
            blend(planes, watermark.overlay, watermark.x, watermark.y)
        return self._frame

    def _background(self, x: int, y: int, w: int, h: int) -> None:
        """Paint black over a rectangle (even coordinates)."""
        self._y[y : y + h, x : x + w] = _BLACK_Y
        self._u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = _NEUTRAL_UV
        self._v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = _NEUTRAL_UV

    def _forget_unseen(self, tiles: Sequence[Tile]) -> None:
        """Drop what was cached for people no longer shown: a meeting's comings and goings
        must not grow the caches, nor a cache be emptied while its entries are in use."""
        shown = {t.cell.participant for t in tiles}
        names = {t.name for t in tiles}
        for key in set(self._scaled) - shown:
            del self._scaled[key]
        for avatar_key in [k for k in self._avatars if k[0] not in names]:
            del self._avatars[avatar_key]
        for label_key in [k for k in self._labels if k[0] not in names]:
            del self._labels[label_key]

    def _picture(self, tile: Tile) -> tuple[VideoFrame, tuple[int, int, int, int]]:
        """The frame to paint and where: the video, or else the initials tile."""
        if tile.frame is not None:
            return tile.frame, fit(tile.cell, tile.frame.width, tile.frame.height)
        rect = fit(tile.cell, *_AVATAR_ASPECT)
        key = (tile.name, tile.user_id, rect[2], rect[3])
        if key not in self._avatars:
            self._avatars[key] = avatar(tile.name, tile.user_id, rect[2], rect[3])
        return self._avatars[key], rect

    def _label(self, name: str, rect: tuple[int, int, int, int]) -> None:
        """The name at the tile's bottom left, inside it."""
        x, y, w, h = rect
        height = label_height(h)
        if not height:
            return
        margin = max(2, even(height / 4))
        key = (name, height, w - 2 * margin)
        if key not in self._labels:
            self._labels[key] = label(name, height, w - 2 * margin)
        overlay = self._labels[key]
        blend((self._y, self._u, self._v), overlay, x + margin, y + h - margin - overlay.height)
