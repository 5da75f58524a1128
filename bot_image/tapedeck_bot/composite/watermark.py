"""The watermark (`composite.watermark`): an image read once, scaled to its size and placed
in its corner of the video; the compositor blends it over every frame, its alpha kept."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from tapedeck_bot.composite.layout import even
from tapedeck_bot.composite.overlays import Overlay
from tapedeck_bot.contract import WATERMARK_MAX_PIXELS, WatermarkPosition, WatermarkSize

__all__ = ["Stamp", "WatermarkError", "inset", "placed_at", "scaled_size", "stamp"]


class WatermarkError(ValueError):
    """The watermark image cannot be used; the message names the field and the fix."""


@dataclass(frozen=True, eq=False)
class Stamp:
    """The watermark ready to blend: its overlay and its top-left corner (even)."""

    overlay: Overlay
    x: int
    y: int


def inset(width: int, height: int) -> int:
    """The gap between the watermark and the video's edges: 3% of the shorter side."""
    return even(min(width, height) * 0.03)


def scaled_size(
    natural: tuple[int, int], size: WatermarkSize | None, room: tuple[int, int]
) -> tuple[int, int]:
    """The watermark's size in the video: `size` (one side given: the other keeps the image's
    aspect) or the image's own, shrunk with its aspect kept to fit `room`; even, at least 2."""
    width, height = float(natural[0]), float(natural[1])
    if size is not None and size.width and size.height:
        width, height = size.width, size.height
    elif size is not None and size.width:
        width, height = size.width, height * size.width / width
    elif size is not None and size.height:
        width, height = width * size.height / height, size.height
    factor = min(1.0, room[0] / width, room[1] / height)
    return max(2, even(width * factor)), max(2, even(height * factor))


def placed_at(
    position: WatermarkPosition, size: tuple[int, int], frame: tuple[int, int], gap: int
) -> tuple[int, int]:
    """The top-left corner of a `size` watermark at `position` in a `frame`, `gap` inside."""
    left = position in (WatermarkPosition.LEFT_TOP, WatermarkPosition.LEFT_BOTTOM)
    top = position in (WatermarkPosition.LEFT_TOP, WatermarkPosition.RIGHT_TOP)
    x = gap if left else frame[0] - gap - size[0]
    y = gap if top else frame[1] - gap - size[1]
    return even(max(0, x)), even(max(0, y))


def stamp(
    data: bytes,
    size: WatermarkSize | None,
    position: WatermarkPosition,
    frame: tuple[int, int],
    field: str,
) -> Stamp:
    """The watermark of image bytes `data` for a `frame` (width, height) video; `field` names
    where the image came from in errors."""
    try:
        # PNG only: the one format the operator checks, and one parser exposed, not all.
        image: Image.Image = Image.open(io.BytesIO(data), formats=["PNG"])
        if image.width * image.height > WATERMARK_MAX_PIXELS:
            raise WatermarkError(
                f"{field}: the image is {image.width}x{image.height} pixels, more than 4096x4096 "
                "allows: scale it down to the size it is shown at"
            )
        image.load()
    except UnidentifiedImageError as exc:
        raise WatermarkError(f"{field}: not a PNG: give a PNG (its alpha is kept)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, WatermarkError):
            raise
        # ValueError: a text chunk that inflates too far; SyntaxError: a broken chunk.
        raise WatermarkError(f"{field}: a PNG that cannot be read ({exc}): save it again") from exc
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: RGBA would clip it
        grey = (np.asarray(image, np.uint32) >> 8).astype(np.uint8)
        image = Image.fromarray(grey)  # 2-D uint8: mode L
    gap = inset(*frame)
    room = (frame[0] - 2 * gap, frame[1] - 2 * gap)
    width, height = scaled_size((image.width, image.height), size, room)
    # Scaled premultiplied ("RGBa"), so that transparent pixels' colours do not bleed into
    # the edges of what is drawn.
    rgba = image.convert("RGBA").convert("RGBa")
    scaled = rgba.resize((width, height), Image.Resampling.LANCZOS).convert("RGBA")
    x, y = placed_at(position, (width, height), frame, gap)
    return Stamp(Overlay.from_rgba(scaled), x, y)
