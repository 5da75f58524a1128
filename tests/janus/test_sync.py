"""A/V sync: each participant flashes white and clicks at the same instant once a second;
in the composite, every flash must be within 45 ms of its participant's click."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import av
import numpy as np

from tapedeck_bot.composite.layout import Cell, layout_cells
from tapedeck_bot.contract import Layout
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.media import COLORS
from tests.janus.conftest import Meeting, Participant, start_recording
from tests.media_probe import band_envelope, onsets, probe

TOLERANCE_S = 0.045
CLICKS_HZ = [1000.0, 2000.0, 3000.0]  # far apart, so overlapping clicks stay separable


def _cell_tracks(
    path: Path, cells: list[Cell], start: float, end: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame in [start, end): times, each cell's mean luma, each cell's median RGB."""
    times, luma, colour = [], [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            t = float(frame.pts * frame.time_base)
            if not start <= t < end:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            regions = [
                rgb[
                    c.y + c.height // 4 : c.y + 3 * c.height // 4 : 4,
                    c.x + c.width // 4 : c.x + 3 * c.width // 4 : 4,
                ]
                for c in cells
            ]
            times.append(t)
            luma.append([r.mean() for r in regions])
            colour.append([np.median(r.reshape(-1, 3), axis=0) for r in regions])
    return np.array(times), np.array(luma), np.array(colour)


def _whose(dim_rgb: np.ndarray, people: list[Participant]) -> Participant:
    """The participant whose colour, dimmed to a third (sync mode), is nearest."""
    return min(people, key=lambda p: float(np.sum((np.array(COLORS[p.colour]) / 3 - dim_rgb) ** 2)))


def _offsets(
    path: Path, audio: np.ndarray, people: list[Participant], start: float, end: float
) -> list[float]:
    """click - flash for every flash of every participant in [start, end)."""
    cells = layout_cells(Layout.GRID, [p.name for p in people], 1280, 720)
    times, luma, colour = _cell_tracks(path, cells, start, end)
    offsets = []
    for i in range(len(cells)):
        dark = luma[:, i] < 120
        person = _whose(np.median(colour[dark, i], axis=0), people)
        flashes = onsets(luma[:, i], times, threshold=150)
        click_times, energy = band_envelope(audio, person.freq)
        clicks = onsets(energy, click_times, threshold=0.3 * energy.max())
        assert len(flashes) >= (end - start) - 2, f"{person.name}: flashes {flashes}"
        offsets += [min(clicks, key=lambda c: abs(c - flash)) - flash for flash in flashes]
    return offsets


def test_flash_and_click_stay_within_45ms(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    first = meeting.join(0, sync=True, freq=CLICKS_HZ[0])
    second = meeting.join(1, sync=True, freq=CLICKS_HZ[1])
    recording = start_recording(janus.http_url, meeting.room, tmp_path / "sync.mp4")
    start = recording.wait_started()
    time.sleep(max(0.0, start + 20 - time.time()))
    late = meeting.join(2, sync=True, freq=CLICKS_HZ[2])
    time.sleep(max(0.0, start + 60 - time.time()))
    recording.signal(signal.SIGINT)
    recording.finish()

    info = probe(recording.out)
    joined = late.joined_at - start
    offsets = _offsets(recording.out, info.audio, [first, second], 1.0, joined - 1.0)
    offsets += _offsets(
        recording.out, info.audio, [first, second, late], joined + 2.5, info.video_seconds - 0.5
    )
    print(
        f"A/V offsets over {len(offsets)} flashes: median {np.median(offsets) * 1000:.1f} ms,"
        f" worst {max(offsets, key=abs) * 1000:.1f} ms"
    )
    assert len(offsets) >= 140  # ~2 x 18 + 3 x 37 flashes, each paired with its click
    assert max(abs(o) for o in offsets) <= TOLERANCE_S
