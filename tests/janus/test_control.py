"""Pause, stop reasons, a wrong room, and a participant that dies: against real Janus."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tapedeck_dev.commands import record_command
from tapedeck_dev.janus import JanusPorts, JanusServer
from tapedeck_dev.participant import ensure_room
from tests.janus.conftest import ENV, Meeting, start_recording
from tests.media_probe import RATE, probe, tone_levels


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def test_pause_removes_five_seconds_and_what_was_said(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    alice = meeting.join(0)
    recording = start_recording(janus.http_url, meeting.room, tmp_path / "out.mp4")
    start = recording.wait_started()
    _sleep_until(start + 3)
    paused_at = recording.signal(signal.SIGUSR1)
    bob = meeting.join(1)  # heard only while the recording is paused
    _sleep_until(paused_at + 3.5)
    bob.leave()
    _sleep_until(paused_at + 5)
    resumed_at = recording.signal(signal.SIGUSR2)
    _sleep_until(resumed_at + 3)
    stopped_at = recording.signal(signal.SIGINT)
    recording.finish()

    info = probe(recording.out)
    assert info.video_seconds == pytest.approx(
        (stopped_at - start) - (resumed_at - paused_at), abs=0.3
    )
    assert info.audio_seconds == pytest.approx(info.video_seconds, abs=0.15)
    heard = info.audio[int(0.5 * RATE) :]
    # Alice is heard all along (a silent file would pass the relative check below) ...
    assert float(np.sqrt(np.mean(heard**2))) > 0.05
    levels = tone_levels(heard, [alice.freq, bob.freq])
    assert levels[alice.freq] == 0.0, levels
    # ... and bob, who spoke only while paused, is not.
    assert levels[bob.freq] < -40, levels


def test_max_seconds_stops_with_its_reason(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    meeting.join(0)
    recording = start_recording(
        janus.http_url, meeting.room, tmp_path / "out.mp4", "--seconds", "4"
    )
    assert "reason=MAX_SECONDS" in recording.finish()
    assert probe(recording.out).video_seconds == pytest.approx(4.0, abs=0.1)


def test_empty_room_stops_with_all_peers_left(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    alice = meeting.join(0)
    recording = start_recording(
        janus.http_url, meeting.room, tmp_path / "out.mp4", "--idle-timeout", "3"
    )
    start = recording.wait_started()
    _sleep_until(start + 2)
    alice.leave()
    assert "reason=ALL_PEERS_LEFT" in recording.finish()
    assert probe(recording.out).video_seconds == pytest.approx(alice.left_at - start + 3, abs=0.6)


def test_wrong_room_is_a_clear_error(janus: JanusServer, tmp_path: Path) -> None:
    done = subprocess.run(
        record_command(janus.http_url, 424242424, "--out", str(tmp_path / "never.mp4")),
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Janus room 424242424 does not exist" in done.stderr
    assert not (tmp_path / "never.mp4").exists()


def test_recorder_survives_a_participant_killed(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    alice, bob = meeting.join(0), meeting.join(1)
    recording = start_recording(janus.http_url, meeting.room, tmp_path / "out.mp4")
    start = recording.wait_started()
    _sleep_until(start + 3)
    bob.kill()  # over HTTP: Janus notices only when its session times out
    _sleep_until(start + 9)
    stopped_at = recording.signal(signal.SIGINT)
    recording.finish()

    info = probe(recording.out)
    assert info.video_seconds == pytest.approx(stopped_at - start, abs=0.3)
    after = tone_levels(info.audio[int(5 * RATE) : int(8.5 * RATE)], [alice.freq, bob.freq])
    assert after[alice.freq] > -6
    assert after[bob.freq] < -40


def test_pod_entry_point_records_from_the_contract_config(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    alice = meeting.join(0)
    config = {
        "namespace": "team-a",
        "recording": "standup",
        "recordingId": "0b5e6f2c-standup",
        "spoolDir": str(tmp_path),
        "spec": {
            "meeting": {"id": "standup", "janus": {"url": janus.ws_url, "room": meeting.room}},
            "composite": {"video": {"codec": "VP8", "width": 640, "height": 360}},
            "maxSeconds": 60,
            "fileNamePrefix": "daily",
        },
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tapedeck_bot.cli", "run"],
        env={**ENV, "TAPEDECK_BOT_CONFIG": json.dumps(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)  # what the kubelet sends when the pod is deleted
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "reason=TERMINATED" in out
    info = probe(tmp_path / "daily_composite.webm")
    assert (info.video_codec, info.width, info.height) == ("vp8", 640, 360)
    levels = tone_levels(info.audio[int(1.0 * RATE) :], [alice.freq, 660.0])
    assert levels[660.0] < -40


def test_recorder_rejoins_after_janus_restarts(tmp_path: Path) -> None:
    own = JanusServer(
        tmp_path / "janus", JanusPorts(http=18089, websocket=18189, rtp_first=23000, rtp_last=23999)
    )
    own.up()
    meeting = Meeting(own.http_url, random.randint(100_000, 999_999))
    try:
        asyncio.run(ensure_room(own.http_url, meeting.room))
        alice = meeting.join(0)
        recording = start_recording(own.http_url, meeting.room, tmp_path / "out.mp4")
        start = recording.wait_started()
        _sleep_until(start + 4)
        own.down()  # every session, room and PeerConnection is gone
        alice.kill()
        _sleep_until(start + 6)
        own.up()
        asyncio.run(ensure_room(own.http_url, meeting.room))
        bob = meeting.join(1)
        recording.stderr.wait_for("joined janus room", timeout=40, nth=2)
        _sleep_until(time.time() + 5)
        recording.signal(signal.SIGINT)
        recording.finish()
    finally:
        meeting.close()
        own.down()

    assert sum('"joined janus room"' in line for line in recording.stderr.lines) == 2
    info = probe(recording.out)
    before = tone_levels(info.audio[int(0.5 * RATE) : int(3.5 * RATE)], [alice.freq, bob.freq])
    after = tone_levels(info.audio[-int(3 * RATE) :], [alice.freq, bob.freq])
    assert before[alice.freq] > -6
    assert before[bob.freq] < -40
    assert after[bob.freq] > -6
    assert after[alice.freq] < -40


def test_pin_is_required_and_checked(janus: JanusServer, tmp_path: Path) -> None:
    room = random.randint(100_000, 999_999)
    asyncio.run(ensure_room(janus.http_url, room, pin="open-sesame"))
    base = record_command(
        janus.http_url, room, "--out", str(tmp_path / "out.mp4"), "--idle-timeout", "1"
    )
    wrong = subprocess.run(
        [*base, "--pin", "guess"], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert wrong.returncode == 2
    assert f"Janus refused the pin for room {room}" in wrong.stderr
    right = subprocess.run(
        [*base, "--pin", "open-sesame"], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert right.returncode == 0, right.stderr
    assert "reason=ALL_PEERS_LEFT" in right.stdout
