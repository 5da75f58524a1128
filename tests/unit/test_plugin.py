"""kubectl tapedeck's pure parts: the Recording `start` makes, and the status view."""

from __future__ import annotations

import datetime as dt

import pytest
from rich.console import Console

from tapedeck_bot.contract import RecordingSpec, RecordingStatus
from tapedeck_operator.plugin.manifest import StartRequest, recording_for, recording_name
from tapedeck_operator.plugin.views import human_bytes, settled, status_view

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


def test_start_makes_a_valid_recording_named_after_the_meeting() -> None:
    manifest = recording_for(
        StartRequest("Weekly Standup #7", "http://janus:8088/janus", 1234, tracks=True, codec="VP8")
    )
    assert manifest["metadata"] == {"name": "weekly-standup-7"}
    spec = RecordingSpec.model_validate(manifest["spec"])
    assert spec.meeting.janus is not None
    assert (spec.meeting.janus.url, spec.meeting.janus.room) == ("http://janus:8088/janus", 1234)
    assert spec.composite.enabled
    assert spec.composite.video.codec == "VP8"
    assert spec.tracks.enabled


def test_tracks_only_turns_the_composite_off() -> None:
    manifest = recording_for(
        StartRequest("m", "http://j/janus", 1, tracks=True, composite=False, name="only")
    )
    spec = RecordingSpec.model_validate(manifest["spec"])
    assert manifest["metadata"]["name"] == "only"
    assert not spec.composite.enabled
    assert spec.tracks.enabled


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (StartRequest("m", "ftp://j", 1), "--janus:"),
        (StartRequest("m", "http://j/janus", 0), "--room:"),
        (StartRequest("m", "http://j/janus", 1, max_seconds=0), "--max-seconds:"),
    ],
)
def test_a_bad_argument_is_named(request_: StartRequest, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        recording_for(request_)


def test_a_meeting_id_without_a_usable_name_asks_for_one() -> None:
    with pytest.raises(ValueError, match="--name"):
        recording_name("!!!")


def _render(recording: dict[str, object], events: list[dict[str, object]]) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(status_view(recording, events, T0 + dt.timedelta(seconds=42)))
    return console.export_text()


def test_the_status_view_shows_phase_participants_bytes_and_events() -> None:
    recording = {
        "metadata": {"name": "standup", "namespace": "team"},
        "spec": {"meeting": {"id": "standup-1"}, "state": "Recording"},
        "status": {
            "phase": "RECORDING",
            "startedAt": T0.isoformat(),
            "participants": [
                {"userId": "alice", "displayName": "Alice", "joinedAt": T0.isoformat()},
                {
                    "userId": "bob",
                    "joinedAt": T0.isoformat(),
                    "leftAt": (T0 + dt.timedelta(seconds=30)).isoformat(),
                },
            ],
            "outputs": [
                {"kind": "composite", "key": "k1", "contentType": "video/mp4", "bytes": 3 << 20},
                {"kind": "track", "key": "k2", "contentType": "audio/webm", "bytes": 1 << 20},
            ],
        },
    }
    events = [
        {"type": "Normal", "reason": f"R{i}", "message": f"m{i}",
         "lastTimestamp": (T0 + dt.timedelta(seconds=i)).isoformat()}
        for i in range(8)
    ]  # fmt: skip
    text = _render(recording, events)
    assert "team/standup" in text
    assert "RECORDING" in text
    assert "42 s" in text  # since it started
    assert "4.0 MiB in 2 file(s)" in text
    assert "Alice" in text
    assert "12s ago" in text  # bob left 12 s before now
    shown = [f"R{i}" for i in range(8) if f"R{i} " in text]
    assert shown == [f"R{i}" for i in range(2, 8)]  # the latest six


def test_the_status_view_of_a_new_recording_and_an_error() -> None:
    pending = {"metadata": {"name": "a", "namespace": "n"}, "spec": {}}
    assert "(pending)" in _render(pending, [])
    failed = {**pending, "status": {"phase": "ERRORED", "error": "room 7 does not exist"}}
    text = _render(failed, [])
    assert "ERRORED" in text
    assert "room 7 does not exist" in text


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 << 30)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 GiB",
    ]


def _status(**fields: object) -> RecordingStatus:
    return RecordingStatus.model_validate(fields)


_OUT = {"kind": "track", "key": "a/t.webm", "contentType": "audio/webm", "bytes": 5}
_URL = {"kind": "track", "key": "a/t.webm", "url": "https://x", "expiresAt": T0.isoformat()}


@pytest.mark.parametrize(
    ("fields", "done"),
    [
        ({"phase": "RECORDING"}, False),
        ({"phase": "ERRORED", "error": "x"}, True),
        ({"phase": "UPLOADED", "outputs": [_OUT]}, False),  # its URL is still to come
        ({"phase": "UPLOADED", "outputs": [_OUT], "downloads": [_URL]}, True),  # tracks only
        ({"phase": "UPLOADED", "outputs": [_OUT], "expired": True}, True),
        ({"phase": "UPLOADED"}, True),  # nothing was recorded
    ],
)
def test_status_watch_ends_once_nothing_more_will_come(
    fields: dict[str, object], done: bool
) -> None:
    assert settled(_status(**fields)) is done
