"""The composite as a person sees it, against real Janus: names read back by OCR (tesseract)
from their tiles in both layouts, initials for someone without video, the speaker's border,
a camera turned off and on again, and a watermark."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tapedeck_bot.composite.layout import Cell, fit, layout_cells
from tapedeck_bot.composite.overlays import BORDER_RGB, label_height, tile_colour
from tapedeck_bot.contract import Layout
from tapedeck_dev.janus import JanusServer
from tests.janus.conftest import Meeting, start_recording
from tests.media_probe import frames_at, nearest_colour, ocr, region_colour
from tests.watermarks import BLUE, logo_png

WIDTH, HEIGHT = 1280, 720
VIDEO = (640, 360)  # what the synthetic publishers send
STALE_S = 2.0  # the composite's limit for a frozen feed (composite/pipeline.py)


def _label_text(image: np.ndarray, rect: tuple[int, int, int, int]) -> str:
    """OCR of the label strip at the bottom left of a tile."""
    x, y, w, h = rect
    band = label_height(h) + max(2, label_height(h) // 4) + 4
    return ocr(image[y + h - band : y + h, x : x + max(w * 3 // 4, 120)])


def _edge_colour(image: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """The median colour of a tile's outermost two rows and columns."""
    x, y, w, h = rect
    ring = np.concatenate(
        [
            image[y : y + 2, x : x + w].reshape(-1, 3),
            image[y + h - 2 : y + h, x : x + w].reshape(-1, 3),
            image[y : y + h, x : x + 2].reshape(-1, 3),
            image[y : y + h, x + w - 2 : x + w].reshape(-1, 3),
        ]
    )
    median: np.ndarray = np.median(ring, axis=0)
    return median


def _close(rgb: np.ndarray, want: tuple[int, int, int] | np.ndarray, tolerance: float = 40) -> bool:
    return float(np.abs(rgb - np.array(want)).max()) < tolerance


def _rect(cell: Cell, video: bool) -> tuple[int, int, int, int]:
    return fit(cell, *VIDEO) if video else fit(cell, 16, 9)


def test_grid_names_initials_and_the_speakers_border(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    alice = meeting.join(0)  # the only one heard
    bob, carol = meeting.join(1, amplitude=0.0), meeting.join(2, amplitude=0.0)
    dave = meeting.join(3, amplitude=0.0, audio_only=True)
    people = [alice, bob, carol, dave]
    logo = tmp_path / "logo.png"
    logo.write_bytes(logo_png(120, 60))
    recording = start_recording(
        janus.http_url, meeting.room, tmp_path / "grid.mp4", "--seconds", "8",
        "--watermark", str(logo), "--watermark-size", "240x",
        "--watermark-position", "right top",
    )  # fmt: skip
    recording.finish()

    image = frames_at(tmp_path / "grid.mp4", [7.0])[7.0]
    cells = layout_cells(Layout.GRID, [p.name for p in people], WIDTH, HEIGHT)
    # Tiles are in the order the bot saw people join; each names its own.
    rects = {}
    for cell in cells:
        text = _label_text(image, _rect(cell, video=True)).lower()
        (person,) = [p for p in people if p.name in text] or [None]
        assert person is not None, text
        rects[person.name] = _rect(cell, video=person is not dave)
    assert set(rects) == {p.name for p in people}
    for person in (alice, bob, carol):
        assert nearest_colour(region_colour(image, *rects[person.name])) == person.colour
    # dave publishes no video: his initials on his own colour, not black.
    x, y, w, h = rects["dave"]
    letter = image[y + h // 5 : y + h * 4 // 5, x + w // 4 : x + w * 3 // 4]
    assert ocr(letter, single_char=True) == "D"
    backdrop = region_colour(image, x, y, w // 5, h // 5)  # a corner, clear of the letter
    assert _close(backdrop, tile_colour("dave"), 25), backdrop
    assert backdrop.max() > 60
    # alice alone sends a tone: the border is on her tile, on nobody else's.
    edges = {name: _edge_colour(image, rect) for name, rect in rects.items()}
    assert _close(edges["alice"], BORDER_RGB), edges
    assert not any(_close(edges[p.name], BORDER_RGB) for p in (bob, carol, dave)), edges
    # The watermark, 240x120 (its aspect kept), 20 px in from the right top corner: blue
    # where the logo is opaque, halfway between white and the tile where it is half. The
    # publishers' moving bar spans whole columns, and dave's tile has a letter in its middle,
    # so each column is compared with the same column of the tile just above the watermark
    # (below the speaker's border), in the same frame.
    x, y = WIDTH - 20 - 240, 20
    assert _close(region_colour(image, x + 10, y + 20, 50, 80), BLUE, 30)
    half = _columns(image, x + 100, x + 220, y + 30, y + 90)
    tile = _columns(image, x + 100, x + 220, y - 12, y - 2)
    assert _close(np.median(half - (tile + 255) / 2, axis=0), (0, 0, 0), 25), (half, tile)
    assert not _close(np.median(half, axis=0), (255, 255, 255), 30)
    assert not _close(np.median(half - tile, axis=0), (0, 0, 0), 30)
    beside = _columns(image, x - 40, x - 10, y + 30, y + 90)
    untouched = beside - _columns(image, x - 40, x - 10, y - 12, y - 2)
    assert _close(np.median(untouched, axis=0), (0, 0, 0), 20)  # left of it, the tile as is


def _columns(image: np.ndarray, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    """The mean colour of each column x0..x1 over the rows y0..y1: (columns, 3)."""
    means: np.ndarray = image[y0:y1, x0:x1].astype(float).mean(axis=0)
    return means


def test_speaker_layout_names_and_a_camera_turned_off_and_on(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    meeting.join(0)
    off_after, off_for = 4.0, 5.0
    bob = meeting.join(1, amplitude=0.0, video_off=(off_after, off_after + off_for))
    recording = start_recording(
        janus.http_url, meeting.room, tmp_path / "speaker.mp4", "--layout", "speaker",
        "--seconds", "14",
    )  # fmt: skip
    start = recording.wait_started()
    recording.finish()

    off = bob.joined_at + off_after - start  # media time of the camera turned off
    on = off + off_for
    # The publisher's camera clock starts with its first frame, a moment after PUBLISHED.
    moments = [off - 1.0, off + STALE_S + 1.5, on + 1.5]
    assert on + 1.5 < 13.5, "the camera must come back well before the end"
    frames = frames_at(tmp_path / "speaker.mp4", moments)
    cells = layout_cells(Layout.SPEAKER, ["alice", "bob"], WIDTH, HEIGHT, speaker="alice")
    main, thumbnail = cells
    before, during, after = (frames[m] for m in moments)

    assert "alice" in _label_text(before, _rect(main, video=True)).lower()
    assert "bob" in _label_text(before, _rect(thumbnail, video=True)).lower()
    video, avatar = _rect(thumbnail, video=True), _rect(thumbnail, video=False)
    assert nearest_colour(region_colour(before, *video)) == bob.colour
    # Within the stale limit of the camera going off: his initials tile, named.
    x, y, w, h = avatar
    assert _close(region_colour(during, x, y, w // 5, h // 5), tile_colour("bob"), 25)
    assert "bob" in _label_text(during, avatar).lower()
    # And his video again once it is back.
    assert nearest_colour(region_colour(after, *video)) == bob.colour
