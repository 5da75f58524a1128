"""Mixing never wraps around, and the speaker tile does not flicker."""

from __future__ import annotations

import numpy as np

from tapedeck_bot.composite.mixer import SpeakerTracker, mix


def test_mix_clips_instead_of_wrapping() -> None:
    loud = np.full((960, 2), 30000, np.int16)
    mixed = mix([loud, loud], channels=2)
    assert mixed.dtype == np.int16
    assert int(mixed.min()) == 32767


def test_mono_mix_averages_left_and_right() -> None:
    block = np.zeros((960, 2), np.int16)
    block[:, 0] = 1000
    assert mix([block], channels=1).shape == (960, 1)
    assert int(mix([block], channels=1)[0, 0]) == 500


def test_speaker_switches_only_after_the_hold_time() -> None:
    tracker = SpeakerTracker(hold_s=1.0)
    t = 0.0
    for _ in range(50):
        tracker.update(t, {"a": 0.5, "b": 0.01})
        t += 0.02
    assert tracker.speaker == "a"
    switched_at = None
    for _ in range(150):
        if tracker.update(t, {"a": 0.01, "b": 0.5}) == "b" and switched_at is None:
            switched_at = t
        t += 0.02
    assert switched_at is not None
    assert switched_at - 1.0 >= 1.0  # b became loudest within the smoothing, then held 1 s


def test_nobody_is_speaking_in_silence() -> None:
    tracker = SpeakerTracker()
    for i in range(100):
        tracker.update(i * 0.02, {"a": 0.0, "b": 0.0001})
    assert tracker.speaker == "b"  # the layout still needs a big tile
    assert tracker.speaking is None  # but nobody is outlined
    for i in range(100, 200):
        tracker.update(i * 0.02, {"a": 0.1, "b": 0.0001})
    assert tracker.speaking == "a"


def test_a_pause_between_words_keeps_the_speaker_outlined() -> None:
    tracker = SpeakerTracker()
    for i in range(100):  # 2 s of speech
        tracker.update(i * 0.02, {"a": 0.1, "b": 0.0})
    for i in range(100, 125):  # a 0.5 s pause
        tracker.update(i * 0.02, {"a": 0.0, "b": 0.0})
    assert tracker.speaking == "a"
    for i in range(125, 325):  # 4 s of silence: the smoothed level falls, then the hold
        tracker.update(i * 0.02, {"a": 0.0, "b": 0.0})
    assert tracker.speaking is None
