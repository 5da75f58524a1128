"""The WHEP connector against Pion's whip-whep: decoded frames and FFT tones prove what was
recorded; refusals are clear and leave no file."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.janus.conftest import ENV, Recording
from tests.media_probe import RATE, audio_samples, frames_at, nearest_colour, probe, region_colour
from tests.media_probe import tone_levels as levels_of
from tests.waiting import eventually
from tests.whep.conftest import StreamFactory, start_whep_recording

SMALL = ("--width", "640", "--height", "360")  # two encoders beside the publishers on 2 cores


def _outputs(recording: Recording) -> list[dict[str, Any]]:
    return [
        json.loads(line.split(" ", 1)[1])
        for line in recording.stdout.lines
        if line.startswith("output: ")
    ]


def _colours(image: Any) -> set[str]:
    """The colours of the grid's two cells (left and right halves, letterboxed)."""
    height, width = image.shape[:2]
    return {nearest_colour(region_colour(image, x, 0, width // 2, height)) for x in (0, width // 2)}


def test_a_stream_is_recorded_as_h264_and_vp8_composites_and_as_a_track(
    whep_streams: StreamFactory, tmp_path: Path
) -> None:
    stage = whep_streams("red", 440.0)
    endpoint = [("stage", stage.server.whep_url)]
    seconds = ("--seconds", "10")
    mp4 = start_whep_recording(
        endpoint, tmp_path / "out.mp4", "--tracks", str(tmp_path / "tracks"), *SMALL, *seconds
    )
    webm = start_whep_recording(endpoint, tmp_path / "out.webm", "--codec", "VP8", *SMALL, *seconds)
    for recording in (mp4, webm):
        assert "reason=MAX_SECONDS" in recording.finish()

    for recording, codec in ((mp4, "h264"), (webm, "vp8")):
        assert recording.out is not None
        info = probe(recording.out)
        assert (info.video_codec, info.width, info.height) == (codec, 640, 360)
        assert info.video_seconds == pytest.approx(10, abs=0.3)
        # Pion asks its publisher for a keyframe every 3 s, and nobody else can: the picture
        # is there 3 s after the session starts, plus the 1.6 s placement delay, plus load.
        for t, image in frames_at(recording.out, [6.5, 9.0]).items():
            assert nearest_colour(region_colour(image, 0, 0, 640, 360)) == "red", t
        assert levels_of(info.audio[4 * RATE : 8 * RATE], [440.0, 660.0])[660.0] < -40
        assert float(abs(info.audio[4 * RATE : 8 * RATE]).max()) > 0.1

    (composite, track) = _outputs(mp4)
    assert (composite["kind"], track["kind"], track["userId"]) == ("composite", "track", "stage")
    samples = audio_samples(tmp_path / "tracks" / track["key"])
    assert len(samples) / RATE > 8
    assert levels_of(samples[2 * RATE :], [440.0, 660.0])[660.0] < -40
    assert float(abs(samples[2 * RATE :]).max()) > 0.1
    # Each recording DELETEd its session; Pion's handler panics on a DELETE and drops the
    # connection, which is only a warning (aiohttp resends a dropped DELETE once: >= 2).
    for recording in (mp4, webm):
        assert "whep session not deleted" in "\n".join(recording.stderr.lines)
    assert stage.requests("DELETE") >= 2
    assert stage.requests("PATCH") == 0  # Pion announces no Accept-Patch: nothing trickled


def test_two_endpoints_are_two_participants_each_with_its_own_track(
    whep_streams: StreamFactory, tmp_path: Path
) -> None:
    alice, bob = whep_streams("red", 440.0), whep_streams("green", 660.0)
    recording = start_whep_recording(
        [("alice", alice.server.whep_url), ("bob", bob.server.whep_url)],
        tmp_path / "out.mp4",
        "--tracks",
        str(tmp_path),
        "--seconds",
        "9",
        *SMALL,
    )
    assert "reason=MAX_SECONDS" in recording.finish()

    image = frames_at(tmp_path / "out.mp4", [8.0])[8.0]
    assert _colours(image) == {"red", "green"}
    mix = probe(tmp_path / "out.mp4").audio[4 * RATE : 8 * RATE]
    assert min(levels_of(mix, [440.0, 660.0]).values()) > -10  # both voices in the mix

    tracks = {o["userId"]: o for o in _outputs(recording) if o["kind"] == "track"}
    assert set(tracks) == {"alice", "bob"}
    for user, own, other in (("alice", 440.0, 660.0), ("bob", 660.0, 440.0)):
        samples = audio_samples(tmp_path / tracks[user]["key"])
        levels = levels_of(samples[2 * RATE :], [own, other])
        assert levels[other] < -40, (user, levels)


def test_a_refused_offer_names_the_endpoint_and_status_and_records_nothing(
    whep_streams: StreamFactory, tmp_path: Path
) -> None:
    guarded = whep_streams("red", 440.0, token="the-right-token")
    cases = {
        "401": (guarded.server.whep_url, {"TAPEDECK_WHEP_TOKEN_0": "a-wrong-token"}),
        "404": (
            f"{guarded.server.url}/no-such-stream",
            {"TAPEDECK_WHEP_TOKEN_0": "the-right-token"},
        ),
    }
    for status, (url, secrets) in cases.items():
        out = tmp_path / status
        recording = start_whep_recording(
            [("stage", url)], out / "out.mp4", "--tracks", str(out), env={**ENV, **secrets}
        )
        code = recording.proc.wait(timeout=60)
        recording.stderr.join()
        error = "\n".join(recording.stderr.lines)
        assert code == 2, error  # a bad meeting, never a retry
        assert f"WHEP endpoint {url} refused the offer: HTTP {status}" in error
        assert "participant stage" in error
        assert "a-wrong-token" not in error
        assert not out.exists() or not any(out.iterdir())
    assert guarded.requests("POST") == 0  # the token check refused before the example

    # With the right token the same endpoint records.
    recording = start_whep_recording(
        [("stage", guarded.server.whep_url)],
        tmp_path / "ok.mp4",
        "--seconds",
        "3",
        *SMALL,
        env={**ENV, "TAPEDECK_WHEP_TOKEN_0": "the-right-token"},
    )
    assert "reason=MAX_SECONDS" in recording.finish()
    eventually(lambda: guarded.requests("POST") >= 1, timeout=5, what="Pion's log of the POST")
    assert os.path.getsize(tmp_path / "ok.mp4") > 0


def test_a_stream_without_media_for_the_idle_timeout_stops_the_recording(
    whep_streams: StreamFactory, tmp_path: Path
) -> None:
    stage = whep_streams("red", 440.0)
    recording = start_whep_recording(
        [("stage", stage.server.whep_url)], None, "--tracks", str(tmp_path), "--idle-timeout", "4"
    )
    start = recording.wait_started()
    time.sleep(max(0.0, start + 5 - time.time()))
    stage.stop_publishing()  # the server stays: its stream just has no media any more
    silent_from = time.time()
    line = recording.finish()

    assert "reason=ALL_PEERS_LEFT" in line
    recorded = float(line.split("recorded=")[1].split("s")[0])
    # The idle timeout counts from the last frame, not from when the loss was noticed (2 s
    # later) nor from a reconnect: the recording ends 4 s after the media did.
    assert recorded == pytest.approx(silent_from - start + 4, abs=1.0)
    (track,) = _outputs(recording)  # audio only was offered: Pion plays it alone
    began = dt.datetime.fromisoformat(track["startedAt"].replace("Z", "+00:00")).timestamp()
    samples = audio_samples(tmp_path / track["key"])
    assert len(samples) / RATE == pytest.approx(silent_from - began, abs=0.5)
    assert levels_of(samples[RATE:], [440.0, 660.0])[660.0] < -40
