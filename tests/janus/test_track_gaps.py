"""An audio track through packet loss and a pause, against real Janus: the file keeps every
gap as time, lost and paused spans are silent, and the rest holds the participant's tone."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from pathlib import Path

import pytest

from tapedeck_dev.janus import JanusServer
from tests.janus.conftest import Meeting, start_recording
from tests.media_probe import RATE, audio_samples, rms

BURST_AFTER_S, BURST_S = 8.0, 1.5  # after alice publishes: every audio packet lost
RANDOM_LOSS = 0.03  # and 3% of the rest
MARGIN_S = 0.3  # signals and bursts take effect within ms; codec tails are shorter still


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def test_lost_and_paused_audio_stay_as_silent_time(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    alice = meeting.join(0, drop_audio=f"{BURST_AFTER_S}:{BURST_S}", audio_loss=RANDOM_LOSS)
    recording = start_recording(
        janus.http_url, meeting.room, None, "--tracks", str(tmp_path), "--track-media", "audio"
    )
    start = recording.wait_started()
    _sleep_until(start + 2)
    paused_at = recording.signal(signal.SIGUSR1)
    _sleep_until(paused_at + 2)
    resumed_at = recording.signal(signal.SIGUSR2)
    burst = (alice.joined_at + BURST_AFTER_S, alice.joined_at + BURST_AFTER_S + BURST_S)
    assert burst[0] > resumed_at + 1, "the burst must fall after the pause to be told apart"
    _sleep_until(burst[1] + 3)
    stopped_at = recording.signal(signal.SIGINT)
    recording.finish()

    outputs = [
        json.loads(line.split(" ", 1)[1])
        for line in recording.stdout.lines
        if line.startswith("output: ")
    ]
    (track,) = outputs
    began = dt.datetime.fromisoformat(track["startedAt"].replace("Z", "+00:00")).timestamp()
    samples = audio_samples(tmp_path / track["key"])

    # Neither the lost packets nor the pause shortened the file: it is the wall clock.
    assert len(samples) / RATE == pytest.approx(stopped_at - began, abs=0.3)

    def span(a: float, b: float) -> tuple[float, float]:  # wall clock -> file time
        return a - began + MARGIN_S, b - began - MARGIN_S

    assert rms(samples, *span(paused_at, resumed_at)) < 1e-3
    assert rms(samples, *span(*burst)) < 1e-3
    heard = [span(began, paused_at), span(resumed_at, burst[0]), span(burst[1], stopped_at)]
    levels = [rms(samples, *s) for s in heard]
    assert min(levels) > 0.05, levels  # the tone, through 3% random loss
