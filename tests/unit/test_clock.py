"""Frames from different streams land on one clock."""

from __future__ import annotations

import pytest

from tapedeck_bot.media.clock import ParticipantClock, SlidingMin


def test_arrival_jitter_does_not_delay_frames() -> None:
    clock = ParticipantClock()
    stream = clock.stream("video", 90000)
    for n, jitter in enumerate([0.030, 0.000, 0.012, 0.045]):
        stream.observe(n * 3000, 10.0 + n / 30 + jitter)
    assert clock.local_time("video", 3 * 3000) == pytest.approx(10.0 + 3 / 30)


def test_sender_reports_remove_the_audio_arrival_lag() -> None:
    # The sender stamped audio pts 0 and video pts 0 at the same instant (NTP 1000.0), but
    # audio is decoded 60 ms after video, as aiortc delivers it on loopback.
    clock = ParticipantClock()
    video, audio = clock.stream("video", 90000), clock.stream("audio", 48000)
    for n in range(30):
        video.observe(n * 3000, 50.0 + n / 30)
    for n in range(50):
        audio.observe(n * 960, 50.060 + n / 50)
    video.sender_report(1000.0 + 0.5, 45000)
    audio.sender_report(1000.0 + 0.5, 24000)
    assert clock.local_time("audio", 48000) == pytest.approx(clock.local_time("video", 90000))
    assert clock.local_time("video", 90000) == pytest.approx(51.0)


def test_without_reports_each_stream_keeps_its_own_arrival_base() -> None:
    clock = ParticipantClock()
    clock.stream("audio", 48000).observe(0, 5.060)
    clock.stream("video", 90000).observe(0, 5.0)
    assert clock.local_time("audio", 0) == pytest.approx(5.060)
    assert clock.local_time("video", 0) == pytest.approx(5.0)


def test_reset_forgets_a_recycled_stream() -> None:
    clock = ParticipantClock()
    clock.stream("video", 90000).observe(900000, 20.0)
    clock.reset("video")
    assert clock.local_time("video", 0) is None


def test_sliding_min_forgets_old_values() -> None:
    window = SlidingMin(window_s=5)
    window.add(0.0, -3.0)
    window.add(1.0, 2.0)
    assert window.value == -3.0
    window.add(10.0, 4.0)
    assert window.value == 4.0


def test_a_timestamp_jump_starts_a_segment_and_old_frames_keep_their_timeline() -> None:
    # Janus first continues a recycled m-line's old timeline, then jumps to the new feed's.
    clock = ParticipantClock()
    audio = clock.stream("audio", 48000)
    before = [audio.observe(185280 + n * 960, 8.0 + n * 0.02) for n in range(25)]
    after = [audio.observe(426046 + n * 960, 8.9 + n * 0.02) for n in range(25)]
    assert set(before) == {0}
    assert set(after) == {1}
    assert clock.local_time("audio", 185280, 0) == pytest.approx(8.0)
    assert clock.local_time("audio", 426046, 1) == pytest.approx(8.9)
    assert clock.local_time("audio", 426046) == pytest.approx(8.9)


def test_a_report_on_the_next_timeline_waits_for_its_frames() -> None:
    clock = ParticipantClock()
    audio = clock.stream("audio", 48000)
    for n in range(25):
        audio.observe(185280 + n * 960, 8.0 + n * 0.02)
    audio.sender_report(500.0, 414541)  # already on the jumped timeline
    assert audio.segments[-1].sender_base is None
    audio.observe(426046, 8.9)
    assert audio.segments[-1].sender_base == pytest.approx(500.0 - 414541 / 48000)
