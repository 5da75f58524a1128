"""What the composite paints over the participants' video: name labels, initials tiles for
those without video, the speaker's border. Rendered once, blended every tick.

Text is drawn by Pillow's FreeType renderer with its own scalable default font (shipped in
the Pillow wheel: nothing to install) into an RGBA image, once per text and size; a tick only
blends cached yuv420p planes into the frame with integer arithmetic.
"""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass

import numpy as np
from av import VideoFrame
from PIL import Image, ImageDraw, ImageFont

from tapedeck_bot.composite.layout import even

__all__ = [
    "BORDER_RGB",
    "Overlay",
    "avatar",
    "blend",
    "fit_text",
    "font_of",
    "initials",
    "label",
    "label_height",
    "paint_border",
    "tile_colour",
]

BORDER_RGB = (255, 191, 0)  # amber: the speaker's border
_LABEL_BACKGROUND = (0, 0, 0, 170)
Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # yuv420p: Y, U, V
_ELLIPSIS = "…"
_NAME_LIMIT = 80  # characters considered for a label: more never fit a tile


def _yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited range, as the encoders and decoders here assume."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return y, u, v


def _half(plane: np.ndarray) -> np.ndarray:
    """2x2 averages (chroma subsampling)."""
    h, w = plane.shape
    halved: np.ndarray = plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return halved


@dataclass(frozen=True)
class Overlay:
    """An RGBA image as yuv420p planes, premultiplied by its alpha (in 1/256), with what is
    kept of the picture below (256 - alpha). Width and height are even."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    keep: np.ndarray
    keep_uv: np.ndarray

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def from_rgba(cls, image: Image.Image) -> Overlay:
        cropped = image.crop((0, 0, even(image.width), even(image.height)))
        rgba = np.asarray(cropped.convert("RGBA"), np.float32)
        alpha = rgba[..., 3] / 255.0
        y, u, v = _yuv(rgba)
        alpha_uv = _half(alpha)
        # Chroma of a 2x2 block weighted by its pixels' alpha, so edges keep their colour.
        weight = np.maximum(alpha_uv * 4, 1e-6)
        u_mean, v_mean = _half(u * alpha) * 4 / weight, _half(v * alpha) * 4 / weight

        def premultiplied(plane: np.ndarray, a: np.ndarray) -> np.ndarray:
            scaled: np.ndarray = np.round(plane * a * 256).astype(np.uint32)
            return scaled

        return cls(
            y=premultiplied(y, alpha),
            u=premultiplied(u_mean, alpha_uv),
            v=premultiplied(v_mean, alpha_uv),
            keep=np.round(256 - alpha * 256).astype(np.uint32),
            keep_uv=np.round(256 - alpha_uv * 256).astype(np.uint32),
        )


def blend(planes: Planes, overlay: Overlay, x: int, y: int) -> None:
    """Blend `overlay` into yuv420p `planes` at even (x, y), clipped to the frame."""
    ys, us, vs = planes
    ox, oy = max(0, -x), max(0, -y)  # the part of the overlay left or above the frame
    x, y = x + ox, y + oy
    h = min(overlay.height - oy, ys.shape[0] - y)
    w = min(overlay.width - ox, ys.shape[1] - x)
    if h <= 0 or w <= 0:
        return
    region = ys[y : y + h, x : x + w]
    keep, values = overlay.keep[oy : oy + h, ox : ox + w], overlay.y[oy : oy + h, ox : ox + w]
    region[:] = (region * keep + values + 128) >> 8  # rounded, not floored
    ch, cw, cy, cx, coy, cox = h // 2, w // 2, y // 2, x // 2, oy // 2, ox // 2
    keep = overlay.keep_uv[coy : coy + ch, cox : cox + cw]
    for plane, chroma in ((us, overlay.u), (vs, overlay.v)):
        region = plane[cy : cy + ch, cx : cx + cw]
        region[:] = (region * keep + chroma[coy : coy + ch, cox : cox + cw] + 128) >> 8


def font_of(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def fit_text(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels (the cut found by bisection: a
    name can be as long as a participant likes)."""
    text = text[:_NAME_LIMIT]
    if font.getlength(text) <= width:
        return text
    low, high = 0, len(text)  # text[:low] + "…" fits; text[:high] + "…" does not
    while high - low > 1:
        middle = (low + high) // 2
        if font.getlength(text[:middle] + _ELLIPSIS) <= width:
            low = middle
        else:
            high = middle
    return text[:low].rstrip() + _ELLIPSIS if low else ""


def label_height(tile_height: int) -> int:
    """A label about a seventh of its tile's height, legible on a speaker-layout thumbnail;
    0 (none) on a tile too small to hold one."""
    height = max(20, min(48, even(tile_height * 0.14)))
    return height if height <= tile_height // 2 else 0


def label(text: str, height: int, max_width: int) -> Overlay:
    """White text on a translucent dark box, `height` high, at most `max_width` wide."""
    font = font_of(round(height * 0.68))
    pad = max(2, height // 4)
    shown = fit_text(text, font, max(1, max_width - 2 * pad))
    width = min(even(max_width), even(font.getlength(shown) + 2 * pad + 1))
    image = Image.new("RGBA", (max(2, width), height), _LABEL_BACKGROUND)
    ImageDraw.Draw(image).text((pad, height / 2), shown, font=font, fill="white", anchor="lm")
    return Overlay.from_rgba(image)


def initials(name: str) -> str:
    """Up to two initials: "Main stage" -> "MS", "alice" -> "A"."""
    words = [w for w in name.replace("_", " ").replace("-", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def tile_colour(user_id: str) -> tuple[int, int, int]:
    """A mid-dark colour derived from the user id: the same person, the same colour."""
    hue = int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:2], "big") / 65536
    r, g, b = colorsys.hls_to_rgb(hue, 0.38, 0.5)
    return round(r * 255), round(g * 255), round(b * 255)


def avatar(name: str, user_id: str, width: int, height: int) -> VideoFrame:
    """A tile for someone without video: their initials on their colour."""
    image = Image.new("RGB", (width, height), tile_colour(user_id))
    font = font_of(round(min(width, height) * 0.4))
    centre = (width / 2, height / 2)
    ImageDraw.Draw(image).text(centre, initials(name), font=font, fill="white", anchor="mm")
    rgb = VideoFrame.from_ndarray(np.asarray(image, np.uint8), format="rgb24")
    frame: VideoFrame = rgb.reformat(format="yuv420p")
    return frame


def paint_border(
    planes: Planes,
    rect: tuple[int, int, int, int],
    thickness: int,
    rgb: tuple[int, int, int] = BORDER_RGB,
) -> None:
    """An opaque frame `thickness` (even) wide inside `rect` (even coordinates)."""
    x, y, w, h = rect
    t = max(2, even(thickness))
    for plane, value, scale in zip(planes, _yuv(np.array(rgb, np.float32)), (1, 2, 2), strict=True):
        px, py, pw, ph, pt = x // scale, y // scale, w // scale, h // scale, t // scale
        v = round(float(value))
        plane[py : py + pt, px : px + pw] = v
        plane[py + ph - pt : py + ph, px : px + pw] = v
        plane[py : py + ph, px : px + pt] = v
        plane[py : py + ph, px + pw - pt : px + pw] = v
