"""Layouts: every participant gets a cell, cells never overlap, tiles keep their aspect."""

from __future__ import annotations

import itertools

import pytest

from tapedeck_bot.composite.layout import Cell, fit, layout_cells
from tapedeck_bot.contract import Layout


def _overlap(a: Cell, b: Cell) -> bool:
    return not (
        a.x + a.width <= b.x
        or b.x + b.width <= a.x
        or a.y + a.height <= b.y
        or b.y + b.height <= a.y
    )


@pytest.mark.parametrize("layout", list(Layout))
@pytest.mark.parametrize("count", range(1, 11))
def test_cells_cover_everyone_without_overlap(layout: Layout, count: int) -> None:
    people = [f"p{i}" for i in range(count)]
    cells = layout_cells(layout, people, 1280, 720, speaker="p2")
    shown = {c.participant for c in cells}
    assert shown == set(people) if layout is Layout.GRID or count <= 9 else len(shown) == 9
    for a, b in itertools.combinations(cells, 2):
        assert not _overlap(a, b), (a, b)
    for c in cells:
        assert (c.x % 2, c.y % 2, c.width % 2, c.height % 2) == (0, 0, 0, 0)
        assert c.x >= 0
        assert c.y >= 0
        assert c.x + c.width <= 1280
        assert c.y + c.height <= 720


def test_four_up_grid_is_two_by_two_of_640x360() -> None:
    cells = layout_cells(Layout.GRID, ["a", "b", "c", "d"], 1280, 720)
    assert [(c.x, c.y, c.width, c.height) for c in cells] == [
        (0, 0, 640, 360),
        (640, 0, 640, 360),
        (0, 360, 640, 360),
        (640, 360, 640, 360),
    ]


def test_three_up_grid_centres_the_last_row() -> None:
    cells = layout_cells(Layout.GRID, ["a", "b", "c"], 1280, 720)
    assert (cells[2].x, cells[2].y) == (320, 360)


def test_speaker_gets_the_big_cell() -> None:
    cells = layout_cells(Layout.SPEAKER, ["a", "b", "c"], 1280, 720, speaker="c")
    big = max(cells, key=lambda c: c.width * c.height)
    assert big.participant == "c"


def test_fit_letterboxes_a_portrait_source() -> None:
    x, y, w, h = fit(Cell("a", 0, 0, 640, 360), 360, 640)
    assert (w, h) == (202, 360)
    assert (x, y) == (218, 0)
