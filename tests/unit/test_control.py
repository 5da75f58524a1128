"""Pause, resume and stop decisions on the media clock."""

from __future__ import annotations

import pytest

from tapedeck_bot.contract import StopReason
from tapedeck_bot.control import RecordingControl


def test_paused_spans_are_not_recorded() -> None:
    control = RecordingControl(max_seconds=100, idle_timeout_s=60)
    control.pause(3.0)
    control.resume(8.0)
    assert control.recorded(10.0) == pytest.approx(5.0)
    assert control.is_paused_at(5.0)
    assert not control.is_paused_at(8.0)


def test_max_seconds_stops_at_the_limit_excluding_pauses() -> None:
    control = RecordingControl(max_seconds=10, idle_timeout_s=60)
    control.room_empty_since(None)
    control.pause(2.0)
    control.resume(7.0)
    assert control.check(14.9) is None
    assert control.check(15.2) is StopReason.MAX_SECONDS
    assert control.stop_at == pytest.approx(15.0)


def test_empty_room_stops_after_the_idle_timeout() -> None:
    control = RecordingControl(max_seconds=100, idle_timeout_s=5)
    control.room_empty_since(None)
    control.room_empty_since(4.0)
    assert control.check(8.9) is None
    assert control.check(9.0) is StopReason.ALL_PEERS_LEFT


def test_a_room_empty_from_the_start_counts_too() -> None:
    control = RecordingControl(max_seconds=100, idle_timeout_s=5)
    control.room_empty_since(0.0)
    assert control.check(5.0) is StopReason.ALL_PEERS_LEFT


def test_stop_while_paused_closes_the_pause_and_keeps_the_first_reason() -> None:
    control = RecordingControl(max_seconds=100, idle_timeout_s=60)
    control.pause(2.0)
    control.stop(4.0, StopReason.STOPPED)
    control.stop(5.0, StopReason.TERMINATED)
    assert (control.stop_at, control.stop_reason) == (4.0, StopReason.STOPPED)
    assert not control.paused
    assert control.recorded(4.0) == pytest.approx(2.0)
