"""The composite against real Janus: decoded frames and FFT tones prove what was recorded."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tapedeck_bot.composite.layout import layout_cells
from tapedeck_bot.contract import Layout
from tapedeck_dev.janus import JanusServer
from tests.janus.conftest import Meeting, Participant, start_recording
from tests.media_probe import (
    RATE,
    frames_at,
    nearest_colour,
    probe,
    region_colour,
    tone_levels,
)


def _present(people: list[Participant], wall: float) -> list[Participant]:
    return [p for p in people if p.joined_at <= wall and (p.left_at is None or wall < p.left_at)]


def _assert_cells_show(image: np.ndarray, present: list[Participant]) -> None:
    """One grid cell per present participant, each in a present participant's colour."""
    cells = layout_cells(Layout.GRID, [p.name for p in present], image.shape[1], image.shape[0])
    seen = Counter(nearest_colour(region_colour(image, c.x, c.y, c.width, c.height)) for c in cells)
    assert seen == Counter(p.colour for p in present)


def _audio(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[int(start * RATE) : int(end * RATE)]


@pytest.mark.parametrize(("codec", "transport"), [("H264", "http"), ("VP8", "ws")])
def test_composite_follows_joins_and_leaves(
    janus: JanusServer, meeting: Meeting, tmp_path: Path, codec: str, transport: str
) -> None:
    alice, bob, carol = (meeting.join(i) for i in range(3))
    url = janus.http_url if transport == "http" else janus.ws_url
    recording = start_recording(url, meeting.room, tmp_path / f"out.{codec}", "--codec", codec)
    start = recording.wait_started()
    time.sleep(max(0.0, start + 4 - time.time()))
    dave = meeting.join(3)
    time.sleep(max(0.0, start + 9 - time.time()))
    bob.leave()
    time.sleep(max(0.0, start + 14 - time.time()))
    stopped_at = recording.signal(signal.SIGINT)
    assert "reason=STOPPED" in recording.finish()

    info = probe(recording.out)
    assert (info.video_codec, info.width, info.height) == (codec.lower(), 1280, 720)
    assert info.audio_codec in ({"aac"} if codec == "H264" else {"opus", "libopus"})
    assert info.fps == pytest.approx(30, abs=0.5)
    assert info.video_seconds == pytest.approx(stopped_at - start, abs=0.3)
    assert info.audio_seconds == pytest.approx(info.video_seconds, abs=0.15)

    people = [alice, bob, carol, dave]
    moments = {
        2.5: start + 2.5,
        6.5: (dave.joined_at + bob.left_at) / 2,  # type: ignore[operator]
        12.0: start + 12.0,
    }
    frames = frames_at(recording.out, [m - start for m in moments.values()])
    for t, image in frames.items():
        _assert_cells_show(image, _present(people, start + t))

    windows = [
        (1.0, dave.joined_at - start - 0.5),
        (dave.joined_at - start + 1.0, bob.left_at - start - 0.5),
        (bob.left_at - start + 1.5, info.video_seconds - 0.3),
    ]  # type: ignore[operator]
    for lo, hi in windows:
        levels = tone_levels(_audio(info.audio, lo, hi), [p.freq for p in people])
        present = _present(people, start + (lo + hi) / 2)
        for person in people:
            # Present tones are within 6 dB of the loudest; absent ones are leakage (< -40 dB).
            heard = levels[person.freq] > -6 if person in present else levels[person.freq] < -40
            assert heard, f"{person.name} in [{lo:.1f}, {hi:.1f}] s: {levels}"


def test_speaker_layout_gives_the_loudest_the_big_tile(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    quiet = meeting.join(0, amplitude=0.02)
    loud = meeting.join(1, amplitude=0.5)
    recording = start_recording(
        janus.http_url, meeting.room, tmp_path / "out.mp4", "--layout", "speaker", "--seconds", "6"
    )
    recording.finish()

    image = frames_at(recording.out, [5.0])[5.0]
    cells = layout_cells(Layout.SPEAKER, ["a", "b"], 1280, 720, speaker="b")
    big, thumbnail = max(cells, key=lambda c: c.width), min(cells, key=lambda c: c.width)
    assert nearest_colour(region_colour(image, big.x, big.y, big.width, big.height)) == loud.colour
    assert (
        nearest_colour(
            region_colour(image, thumbnail.x, thumbnail.y, thumbnail.width, thumbnail.height)
        )
        == quiet.colour
    )
