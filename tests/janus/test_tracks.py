"""Per-participant tracks against real Janus: own tone only, presence-long, aligned."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tapedeck_dev.janus import JanusServer
from tests.janus.conftest import Meeting, Participant, Recording, start_recording
from tests.media_probe import (
    RATE,
    audio_samples,
    band_envelope,
    nearest_colour,
    region_colour,
    tone_levels,
)

NAME = re.compile(r"^daily_(?P<user>[a-z]+)_(?P<peer>\d+)_webcam_audio_(?P<ms>\d{13})\.webm$")


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def _outputs(recording: Recording) -> list[dict[str, object]]:
    return [
        json.loads(line.split(" ", 1)[1])
        for line in recording.stdout.lines
        if line.startswith("output: ")
    ]


def _decode(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    with av.open(str(path)) as container:
        metadata = dict(container.metadata)
    return audio_samples(path), metadata


def _unix(value: object) -> float:
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def test_one_file_per_session_with_only_its_own_voice(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    alice, bob, carol = (meeting.join(i) for i in range(3))
    recording = start_recording(
        janus.http_url,
        meeting.room,
        tmp_path / "composite.mp4",
        "--tracks",
        str(tmp_path),
        "--prefix",
        "daily",
    )
    start = recording.wait_started()
    _sleep_until(start + 4)
    dave = meeting.join(3)
    _sleep_until(start + 8)
    bob.leave()
    _sleep_until(start + 11)
    bob_again = meeting.join(1)
    _sleep_until(start + 16)
    stopped_at = recording.signal(signal.SIGINT)
    recording.finish()

    tracks = [o for o in _outputs(recording) if o["kind"] == "track"]
    composite = next(o for o in _outputs(recording) if o["kind"] == "composite")
    sessions: list[tuple[Participant, float, float]] = [
        (alice, start, stopped_at),
        (carol, start, stopped_at),
        (dave, dave.joined_at, stopped_at),
        (bob, start, bob.left_at),
        (bob_again, bob_again.joined_at, stopped_at),
    ]  # type: ignore[list-item]
    assert sorted(str(t["userId"]) for t in tracks) == ["alice", "bob", "bob", "carol", "dave"]
    everyone = [p.freq for p in (alice, bob, carol, dave)]
    for person, joined, left in sessions:
        track = min(
            (t for t in tracks if t["userId"] == person.name),
            key=lambda t: abs(_unix(t["startedAt"]) - joined),
        )
        name = NAME.match(str(track["key"]))
        assert name is not None, track["key"]
        samples, metadata = _decode(tmp_path / str(track["key"]))
        started = _unix(track["startedAt"])
        assert (
            int(metadata["TAPEDECK_STARTED_AT_UNIX_MS"]) == int(name["ms"]) == round(started * 1000)
        )
        # Wall clocks of two processes: the participant prints PUBLISHED when Janus answers,
        # the bot learns of the join from Janus' next event; on 2 cores that also run four
        # publishers either may lag by 100+ ms. The media-timestamp alignment is below.
        assert started == pytest.approx(joined, abs=0.25), person.name
        assert len(samples) / RATE == pytest.approx(left - joined, abs=0.3), (
            person.name,
            "\n".join(recording.stderr.lines),
        )
        levels = tone_levels(samples[int(0.2 * RATE) : -int(0.2 * RATE)], everyone)
        assert all(level < -30 for f, level in levels.items() if f != person.freq), (
            person.name,
            levels,
        )

    # Laid on the composite's timeline by its start time, dave's track lines up: his voice
    # begins where the composite's start time says it should.
    dave_track = next(t for t in tracks if t["userId"] == "dave")
    offset = _unix(dave_track["startedAt"]) - _unix(composite["startedAt"])
    in_track = _onset(_decode(tmp_path / str(dave_track["key"]))[0], dave.freq)
    in_composite = _onset(_decode(tmp_path / "composite.mp4")[0], dave.freq)
    assert in_composite == pytest.approx(offset + in_track, abs=0.05)


def _onset(samples: np.ndarray, freq: float) -> float:
    """When a tone at `freq` starts (20 ms windows keep 880 Hz out of 1100 Hz)."""
    times, energy = band_envelope(samples, freq, size=960)
    return float(times[np.argmax(energy > 0.5 * energy.max())])


def test_user_ids_limit_the_tracks(janus: JanusServer, meeting: Meeting, tmp_path: Path) -> None:
    for i in range(3):
        meeting.join(i)
    recording = start_recording(
        janus.http_url,
        meeting.room,
        tmp_path / "composite.mp4",
        "--tracks",
        str(tmp_path),
        "--track-users",
        "alice,carol",
        "--seconds",
        "4",
    )
    recording.finish()
    users = sorted(str(o["userId"]) for o in _outputs(recording) if o["kind"] == "track")
    assert users == ["alice", "carol"]
    assert sorted(p.name.split("_")[0] for p in tmp_path.glob("*_audio_*.webm")) == [
        "alice",
        "carol",
    ]


def test_video_tracks_keep_vp8_as_sent_and_reencode_h264(
    janus: JanusServer, meeting: Meeting, tmp_path: Path
) -> None:
    alice = meeting.join(0, codec="vp8")
    bob = meeting.join(1, codec="h264")
    recording = start_recording(
        janus.http_url,
        meeting.room,
        None,
        "--tracks",
        str(tmp_path),
        "--track-media",
        "both",
        "--seconds",
        "6",
    )
    recording.finish()

    videos = {
        str(o["userId"]): tmp_path / str(o["key"])
        for o in _outputs(recording)
        if o["kind"] == "track" and o["contentType"] == "video/webm"
    }
    assert sorted(videos) == ["alice", "bob"]
    for person, how in ((alice, "as-sent"), (bob, "re-encoded")):
        with av.open(str(videos[person.name])) as container:
            assert container.metadata["TAPEDECK_VIDEO"] == how
            assert container.streams.video[0].codec_context.name == "vp8"
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) >= 5 * 30 * 0.9, person.name
        middle = frames[len(frames) // 2]
        assert nearest_colour(region_colour(middle, 0, 0, middle.shape[1], middle.shape[0])) == (
            person.colour
        )
    audio = [o for o in _outputs(recording) if o["contentType"] == "audio/webm"]
    assert len(audio) == 2
