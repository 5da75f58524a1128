"""What the composite draws over the video: labels, initials tiles, the speaker's border,
and the alpha blending they share."""

from __future__ import annotations

import numpy as np
from av import VideoFrame
from PIL import Image

from tapedeck_bot.composite.compositor import Compositor, Presentation, Tile
from tapedeck_bot.composite.layout import layout_cells
from tapedeck_bot.composite.overlays import (
    BORDER_RGB,
    Overlay,
    blend,
    initials,
    label,
    label_height,
    tile_colour,
)
from tapedeck_bot.contract import Layout


def _red(width: int = 640, height: int = 360) -> VideoFrame:
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (200, 30, 30)
    return VideoFrame.from_ndarray(image, format="rgb24")


def test_a_long_name_is_cut_with_an_ellipsis_to_fit() -> None:
    short = label("bob", 24, 300)
    long = label("Bartholomew Maximilian Featherstonehaugh-Cholmondeley", 24, 300)
    assert short.width < 100
    assert long.width <= 300
    assert long.height == short.height == 24


def test_initials_and_colours_belong_to_the_person() -> None:
    assert (initials("Main stage"), initials("alice"), initials("--")) == ("MS", "A", "?")
    assert tile_colour("dave") == tile_colour("dave") != tile_colour("erin")
    assert all(60 <= max(tile_colour(name)) <= 200 for name in ("a", "b", "c", "dave"))
    assert label_height(180) == 24
    assert label_height(1080) == 48


def test_blending_keeps_the_picture_below_in_proportion_to_alpha() -> None:
    white_half = Overlay.from_rgba(Image.new("RGBA", (4, 4), (255, 255, 255, 128)))
    y = np.full((4, 4), 16, np.uint8)
    u, v = np.full((2, 2), 128, np.uint8), np.full((2, 2), 128, np.uint8)
    blend((y, u, v), white_half, 0, 0)
    assert np.all(np.abs(y.astype(int) - (16 + 235) // 2) <= 1)  # halfway, not pasted
    assert np.all(np.abs(u.astype(int) - 128) <= 1)


def test_the_compositor_names_tiles_draws_initials_and_outlines_the_speaker() -> None:
    cells = layout_cells(Layout.GRID, ["a", "b"], 1280, 360)
    tiles = [Tile(cells[0], _red(), "alice", "a"), Tile(cells[1], None, "bob", "b")]
    image = Compositor(1280, 360).compose(tiles, speaker="a").to_ndarray(format="rgb24")
    assert np.abs(image[2, 320].astype(int) - BORDER_RGB).max() < 30  # alice's top edge
    assert np.abs(image[180, 700].astype(int) - tile_colour("b")).max() < 30  # bob's colour
    assert image[340, 10:60].min() < 60  # alice's label box, bottom left

    bare = Compositor(1280, 360, Presentation(labels=False, speaker_highlight=False))
    plain = bare.compose(tiles, speaker="a").to_ndarray(format="rgb24")
    assert np.abs(plain[2, 320].astype(int) - (200, 30, 30)).max() < 30
    assert np.abs(plain[340, 10:60].astype(int) - (200, 30, 30)).max() < 30


def test_nobody_is_outlined_alone_or_in_silence() -> None:
    (cell,) = layout_cells(Layout.GRID, ["a"], 640, 360)
    image = Compositor(640, 360).compose([Tile(cell, _red(), "alice", "a")], speaker="a")
    assert np.abs(image.to_ndarray(format="rgb24")[2, 320].astype(int) - (200, 30, 30)).max() < 30
