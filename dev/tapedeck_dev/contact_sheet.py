"""A contact sheet of a video: thumbnails at even times in a grid, each with its time, as one
PNG. The demo writes one for the composite, so the first look needs no video player."""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image, ImageDraw

__all__ = ["contact_sheet", "sample_times"]

LABEL_HEIGHT = 20


def sample_times(duration: float, count: int) -> list[float]:
    """`count` times spread evenly over the video, each in the middle of its slice."""
    return [(i + 0.5) * duration / count for i in range(count)]


def contact_sheet(
    video: Path, out: Path, *, count: int = 8, columns: int = 4, width: int = 320
) -> Image.Image:
    """Write the sheet of `video` to `out` (PNG) and return it."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        duration = float(container.duration or 0) / av.time_base
        if duration <= 0:
            raise ValueError(f"{video}: no duration to sample")
        height = round(width * stream.codec_context.height / stream.codec_context.width / 2) * 2
        wanted = sample_times(duration, count)
        thumbnails: list[tuple[float, Image.Image]] = []
        for frame in container.decode(stream):
            if len(thumbnails) == count:
                break
            if frame.time is None:
                continue
            if frame.time >= wanted[len(thumbnails)]:
                rgb = frame.reformat(width, height, format="rgb24").to_ndarray()
                thumbnails.append((frame.time, Image.fromarray(rgb)))
    rows = -(-len(thumbnails) // columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + LABEL_HEIGHT)), "black")
    draw = ImageDraw.Draw(sheet)
    for i, (at, thumbnail) in enumerate(thumbnails):
        x, y = (i % columns) * width, (i // columns) * (height + LABEL_HEIGHT)
        sheet.paste(thumbnail, (x, y))
        draw.text((x + 4, y + height + 3), f"{at:5.1f} s", fill="white")
    sheet.save(out, format="PNG")
    return sheet
