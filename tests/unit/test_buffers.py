"""The composite stage's per-participant buffers: audio placed by position in a ring (across
its wrap, gapless despite clock refinements, silent where nothing came), and the video frame
to show at a tick."""

from __future__ import annotations

import numpy as np

from tapedeck_bot.media.buffers import AUDIO_RATE, AudioTimeline, VideoBuffer
from tests.unit.pipeline_fakes import colour_frame


def _block(value: int, n: int = 960) -> np.ndarray:
    return np.full((n, 2), value, np.int16)


def test_audio_is_read_where_it_was_placed_across_the_ring_wrap() -> None:
    timeline = AudioTimeline(seconds=0.05)  # 2400 samples: every third block wraps
    for n in range(12):
        timeline.write(n * 0.02, _block(n + 1))
        if n:  # read a block behind the writer, as the composite does
            out = timeline.read((n - 1) * 960, 960)
            assert (out == n).all(), n


def test_what_was_never_written_reads_as_silence_and_a_read_frees_it() -> None:
    timeline = AudioTimeline(seconds=1)
    timeline.write(0.5, _block(7, 480))
    out = timeline.read(int(0.49 * AUDIO_RATE), 960)
    assert (out[:480] == 0).all()
    assert (out[480:] == 7).all()
    assert (timeline.read(0, 960) == 0).all()  # behind the read position: nothing left


def test_a_write_within_10_ms_of_the_previous_end_continues_it() -> None:
    timeline = AudioTimeline(seconds=1)
    timeline.write(0.0, _block(1))
    timeline.write(0.02 + 0.004, _block(2))  # the clock moved 4 ms: no gap, no overlap
    out = timeline.read(0, 1920)
    assert (out[:960] == 1).all()
    assert (out[960:] == 2).all()


def test_audio_beyond_the_ring_ahead_of_the_reader_is_dropped() -> None:
    timeline = AudioTimeline(seconds=0.05)
    timeline.write(1.0, _block(9))  # 1 s ahead of a reader at 0: outside the ring
    assert not timeline.read(0, 2400).any()


def test_the_frame_shown_is_the_newest_not_after_the_tick_until_it_goes_stale() -> None:
    buffer = VideoBuffer()
    red, blue = colour_frame((255, 0, 0), 0), colour_frame((0, 0, 255), 3000)
    buffer.push(1.0, red)
    buffer.push(1.5, blue)
    assert buffer.frame_at(0.9, stale_after=2) is None
    assert buffer.frame_at(1.2, stale_after=2) is red
    assert buffer.frame_at(1.5, stale_after=2) is blue
    assert buffer.frame_at(3.6, stale_after=2) is None  # the sender went quiet


def test_a_buffer_keeps_at_most_its_limit_dropping_the_oldest() -> None:
    buffer = VideoBuffer(max_frames=2)
    frames = [colour_frame((n, 0, 0), n) for n in range(3)]
    for n, frame in enumerate(frames):
        buffer.push(n * 0.1, frame)
    assert buffer.frame_at(0.05, stale_after=2) is None  # frame 0 was dropped
    assert buffer.frame_at(0.25, stale_after=2) is frames[2]
