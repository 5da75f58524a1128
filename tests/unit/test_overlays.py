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
    fit_text,
    font_of,
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
    font = font_of(16)
    name = "Bartholomew Maximilian Featherstonehaugh-Cholmondeley"
    cut = fit_text(name, font, 300)
    assert cut.endswith("…")
    assert name.startswith(cut[:-1])
    assert font.getlength(cut) <= 300 < font.getlength(cut[:-1] + name[len(cut) - 1] + "…")
    assert fit_text("bob", font, 300) == "bob"
    assert fit_text("x" * 100_000, font, 300).endswith("…")  # fast: bisection, capped
    assert label(name, 24, 300).height == label("bob", 24, 300).height == 24


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
    box = image[305:345, 14:18]  # alice's label box (48 px, 12 px in), left of the text
    assert box.max() < 110  # dark, the red below still showing through a little
    assert box[..., 0].min() > box[..., 1].max()

    bare = Compositor(1280, 360, Presentation(labels=False, speaker_highlight=False))
    plain = bare.compose(tiles, speaker="a").to_ndarray(format="rgb24")
    assert np.abs(plain[2, 320].astype(int) - (200, 30, 30)).max() < 30
    assert np.abs(plain[340, 10:60].astype(int) - (200, 30, 30)).max() < 30


def test_nobody_is_outlined_alone() -> None:
    (cell,) = layout_cells(Layout.GRID, ["a"], 640, 360)
    image = Compositor(640, 360).compose([Tile(cell, _red(), "alice", "a")], speaker="a")
    assert np.abs(image.to_ndarray(format="rgb24")[2, 320].astype(int) - (200, 30, 30)).max() < 30


def test_tiles_that_change_leave_nothing_behind() -> None:
    """The compositor re-uses its frame: after video, initials and speaker changes, each
    tick is what a fresh compositor paints for the same tiles."""
    cells = layout_cells(Layout.GRID, ["a", "b"], 1280, 360)
    ticks = [
        ([_red(), _red()], "a"),
        ([None, _red()], "b"),
        ([_red(1920, 100), None], None),  # a very wide source: a short tile
        ([_red(), _red()], "a"),
    ]
    reused = Compositor(1280, 360)
    for frames, speaker in ticks:
        tiles = [Tile(c, f, n, n) for c, f, n in zip(cells, frames, ("a", "b"), strict=True)]
        fresh = Compositor(1280, 360).compose(tiles, speaker).to_ndarray(format="rgb24")
        assert np.array_equal(reused.compose(tiles, speaker).to_ndarray(format="rgb24"), fresh)


def test_a_tile_too_small_for_a_label_has_none() -> None:
    (cell,) = layout_cells(Layout.GRID, ["a"], 16, 16)
    image = Compositor(16, 16).compose([Tile(cell, _red(), "alice", "a")], speaker=None)
    assert np.abs(image.to_ndarray(format="rgb24")[8, 8].astype(int) - (200, 30, 30)).max() < 30


def test_nobody_is_outlined_in_silence() -> None:
    cells = layout_cells(Layout.GRID, ["a", "b"], 1280, 360)
    tiles = [Tile(c, _red(), n, n) for c, n in zip(cells, ("a", "b"), strict=True)]
    image = Compositor(1280, 360).compose(tiles, speaker=None).to_ndarray(format="rgb24")
    assert np.abs(image[2, 320].astype(int) - (200, 30, 30)).max() < 30
