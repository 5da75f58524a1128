"""Where each participant goes in the composite: pure functions of who is there.

Cells and fitted tiles have even coordinates and sizes, because yuv420p chroma covers 2x2
pixels: an odd offset would shift a tile's colour by half a pixel against its luma.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tapedeck_bot.contract import Layout

__all__ = ["Cell", "even", "fit", "layout_cells"]

_MAX_THUMBNAILS = 8


@dataclass(frozen=True)
class Cell:
    participant: str
    x: int
    y: int
    width: int
    height: int


def even(value: float) -> int:
    """The even integer at or below `value` (yuv420p chroma covers 2x2 pixels)."""
    return int(value) // 2 * 2


def _grid(participants: Sequence[str], width: int, height: int) -> list[Cell]:
    cols = math.ceil(math.sqrt(len(participants)))
    rows = math.ceil(len(participants) / cols)
    cell_w, cell_h = even(width / cols), even(height / rows)
    cells = []
    for i, participant in enumerate(participants):
        row, col = divmod(i, cols)
        in_row = min(cols, len(participants) - row * cols)
        # Centre a short last row, as meeting apps do.
        x0 = even((width - in_row * cell_w) / 2)
        cells.append(Cell(participant, x0 + col * cell_w, row * cell_h, cell_w, cell_h))
    return cells


def _speaker(
    participants: Sequence[str], speaker: str | None, width: int, height: int
) -> list[Cell]:
    main = speaker if speaker is not None and speaker in participants else participants[0]
    others = [p for p in participants if p != main][:_MAX_THUMBNAILS]
    if not others:
        return [Cell(main, 0, 0, width, height)]
    strip_h = even(height / 4)
    thumb_w = even(width / max(len(others), 4))
    x0 = even((width - thumb_w * len(others)) / 2)
    cells = [Cell(main, 0, 0, width, height - strip_h)]
    cells += [
        Cell(p, x0 + i * thumb_w, height - strip_h, thumb_w, strip_h) for i, p in enumerate(others)
    ]
    return cells


def layout_cells(
    layout: Layout, participants: Sequence[str], width: int, height: int, speaker: str | None = None
) -> list[Cell]:
    """The cells for `participants` (in join order) on a width x height canvas."""
    if not participants:
        return []
    if layout is Layout.SPEAKER:
        return _speaker(participants, speaker, width, height)
    return _grid(participants, width, height)


def fit(cell: Cell, source_width: int, source_height: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) of a source scaled into `cell`, aspect kept, centred (letterbox)."""
    scale = min(cell.width / source_width, cell.height / source_height)
    w = max(2, even(source_width * scale))
    h = max(2, even(source_height * scale))
    return cell.x + even((cell.width - w) / 2), cell.y + even((cell.height - h) / 2), w, h
