"""The watermark: sized as asked, placed in its corner, blended with its alpha every tick."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from av import VideoFrame
from PIL import Image, PngImagePlugin

from tapedeck_bot import cli as bot_cli
from tapedeck_bot.composite.compositor import Compositor, Presentation, Tile
from tapedeck_bot.composite.layout import layout_cells
from tapedeck_bot.composite.watermark import (
    WatermarkError,
    inset,
    placed_at,
    scaled_size,
    stamp,
)
from tapedeck_bot.contract import BotConfig, Layout, WatermarkPosition, WatermarkSize
from tapedeck_bot.standalone import pod_recording
from tests.recordings import recording
from tests.watermarks import BLUE, logo_png

_FIELD = "spec.composite.watermark.url"


def _grey(width: int, height: int) -> VideoFrame:
    return VideoFrame.from_ndarray(np.full((height, width, 3), 100, np.uint8), format="rgb24")


def test_the_size_keeps_the_aspect_when_one_side_is_given_and_fits_the_video() -> None:
    room = (600, 300)
    assert scaled_size((120, 60), None, room) == (120, 60)
    assert scaled_size((120, 60), WatermarkSize(width=200, height=50), room) == (200, 50)
    assert scaled_size((120, 60), WatermarkSize(width=240), room) == (240, 120)
    assert scaled_size((120, 60), WatermarkSize(height=30), room) == (60, 30)
    assert scaled_size((2000, 500), None, room) == (600, 150)  # shrunk, aspect kept
    assert scaled_size((121, 61), None, room) == (120, 60)  # even: whole chroma blocks


def test_each_corner_is_inset_from_the_edges() -> None:
    gap = inset(1280, 720)
    assert gap == 20  # 3% of 720, made even
    size, frame = (200, 100), (1280, 720)
    assert placed_at(WatermarkPosition.LEFT_TOP, size, frame, gap) == (20, 20)
    assert placed_at(WatermarkPosition.RIGHT_TOP, size, frame, gap) == (1060, 20)
    assert placed_at(WatermarkPosition.LEFT_BOTTOM, size, frame, gap) == (20, 600)
    assert placed_at(WatermarkPosition.RIGHT_BOTTOM, size, frame, gap) == (1060, 600)


def test_the_watermark_is_blended_over_tiles_and_background_alike() -> None:
    mark = stamp(logo_png(), None, WatermarkPosition.RIGHT_BOTTOM, (640, 360), _FIELD)
    assert (mark.x, mark.y, mark.overlay.width, mark.overlay.height) == (510, 290, 120, 60)
    (cell,) = layout_cells(Layout.GRID, ["a"], 640, 360)
    # A 560x360 source leaves black bars at x < 40 and x >= 600: the watermark (x 510 to 630)
    # is partly over the video and partly over the bar.
    tile = Tile(cell, _grey(560, 360), "alice", "a")
    compositor = Compositor(640, 360, Presentation(labels=False, watermark=mark))
    for _ in range(3):  # the same pixels every tick: no blend over the last one's
        image = compositor.compose([tile]).to_ndarray(format="rgb24").astype(int)
        assert np.abs(image[320, 530] - BLUE).max() < 25  # opaque: the logo's colour
        over_grey, over_black = image[320, 576], image[320, 616]
        assert np.abs(over_grey - (100 + 255) / 2).max() < 20  # halfway: blended, not pasted
        assert np.abs(over_black - 255 / 2).max() < 20
        assert np.abs(image[280, 530] - 100).max() < 12  # above it, the video
        assert np.abs(image[355, 636]).max() < 12  # the inset, black


def test_an_unreadable_or_huge_image_names_the_field() -> None:
    with pytest.raises(WatermarkError, match=f"{_FIELD}: not a PNG: give a PNG"):
        stamp(b"<html>not found</html>", None, WatermarkPosition.LEFT_TOP, (640, 360), _FIELD)
    huge = io.BytesIO()
    Image.new("1", (5000, 4000)).save(huge, "PNG")
    with pytest.raises(WatermarkError, match=r"5000x4000 pixels.*scale it down"):
        stamp(huge.getvalue(), None, WatermarkPosition.LEFT_TOP, (640, 360), _FIELD)


def _png(image: Image.Image, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


def test_a_16_bit_grey_png_keeps_its_grey() -> None:
    grey = Image.fromarray(np.full((40, 80), 32768, np.uint16))  # 50% grey, 16 bits
    mark = stamp(_png(grey), None, WatermarkPosition.LEFT_TOP, (640, 360), _FIELD)
    # Opaque mid-grey in limited-range Y (16 + 219 * 0.5), not clipped to white (235).
    assert abs(int(np.median(mark.overlay.y)) // 256 - 126) <= 2


def test_only_png_is_read_and_a_bomb_in_a_text_chunk_is_an_error() -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(jpeg, "JPEG")
    with pytest.raises(WatermarkError, match=f"{_FIELD}: not a PNG"):
        stamp(jpeg.getvalue(), None, WatermarkPosition.LEFT_TOP, (640, 360), _FIELD)
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "x" * (16 * 1024 * 1024), zip=True)  # inflates to 16 MiB
    bomb = _png(Image.new("RGBA", (40, 20)), pnginfo=text)
    assert len(bomb) < 100_000
    with pytest.raises(WatermarkError, match=f"{_FIELD}: a PNG that cannot be read .*too large"):
        stamp(bomb, None, WatermarkPosition.LEFT_TOP, (640, 360), _FIELD)


def test_a_recording_without_a_composite_draws_no_watermark() -> None:
    spec = {
        **recording()["spec"],
        "composite": {"enabled": False, "watermark": {"url": "https://cdn.example.com/l.png"}},
        "tracks": {"enabled": True},
    }
    config = BotConfig(namespace="n", recording="r", recording_id="uid", spec=spec)
    assert pod_recording(config).watermark is None
    drawn = BotConfig(
        namespace="n",
        recording="r",
        recording_id="uid",
        spec={**spec, "composite": {"watermark": {"url": "https://cdn.example.com/l.png"}}},
        watermark_file="/etc/tapedeck/watermark/watermark.png",
    )
    watermark = pod_recording(drawn).watermark
    assert watermark is not None
    assert watermark.field == "spec.composite.watermark.url"


def test_the_cli_refuses_a_size_without_its_x(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["record", "--janus", "http://127.0.0.1:9/janus", "--room", "1", "--out", "o.mp4"]
    assert bot_cli.main([*args, "--watermark", "logo.png", "--watermark-size", "200"]) == 2
    assert "--watermark-size '200': expected WIDTHxHEIGHT" in capsys.readouterr().err
