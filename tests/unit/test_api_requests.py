"""RealtimeKit's start requests become Recordings; what tapedeck does not support is refused
with the field's name, never ignored."""

from __future__ import annotations

from typing import Any

import pytest

from tapedeck_bot.contract import RecordingSpec
from tapedeck_operator.api.requests import (
    MEETING_LABEL,
    RequestRefused,
    composite_recording,
    track_recording,
)
from tapedeck_operator.api.settings import ApiSettings
from tests.realtimekit_api import validate

SETTINGS = ApiSettings.model_validate(
    {
        "apps": {
            "app-1": {
                "namespace": "team-a",
                "janusUrl": "http://janus.meet:8088/janus",
                "rooms": {"0b7f1c2d-3e4f-4b9a-9f4e-6f2c3c4e2d52": 1234},
                "storage": {
                    "type": "s3",
                    "bucket": "recordings",
                    "region": "us-east-1",
                    "secretRef": {"name": "rec-storage"},
                },
            }
        }
    }
)
APP = SETTINGS.app("app-1")
MEETING = "0b7f1c2d-3e4f-4b9a-9f4e-6f2c3c4e2d52"


def _start(body: dict[str, Any]) -> dict[str, Any]:
    validate(body, "StartRecordingRequest")  # every request we accept is RealtimeKit's
    return composite_recording(body, APP, "app-1", SETTINGS.namespace("app-1"))


def test_a_start_request_becomes_a_recording() -> None:
    manifest = _start(
        {
            "meeting_id": MEETING,
            "max_seconds": 600,
            "file_name_prefix": "standup",
            "allow_multiple_recordings": True,
            "video_config": {"codec": "VP8", "width": 640, "height": 360},
            "audio_config": {"channel": "mono"},
            "storage_config": {"type": "aws", "bucket": "other", "path": "daily"},
        }
    )
    assert manifest["metadata"]["namespace"] == "team-a"
    assert manifest["metadata"]["labels"][MEETING_LABEL] == MEETING
    spec = RecordingSpec.model_validate(manifest["spec"])
    assert spec.meeting.janus is not None
    assert (spec.meeting.id, spec.meeting.janus.room) == (MEETING, 1234)
    assert (spec.max_seconds, spec.file_name_prefix, spec.allow_multiple_recordings) == (
        600,
        "standup",
        True,
    )
    assert (spec.composite.video.codec, spec.composite.video.width) == ("VP8", 640)
    assert spec.composite.audio.channels == 1
    assert spec.storage is not None
    assert (spec.storage.bucket, spec.storage.path, spec.storage.secret_ref.name) == (
        "other",
        "daily",
        "rec-storage",
    )


def test_a_watermark_is_realtimekit_s_video_config_watermark() -> None:
    watermark = {"url": "https://cdn.example.com/w.png", "size": {"width": 200}}
    body = {"meeting_id": MEETING, "video_config": {"watermark": watermark}}
    validate(body, "StartRecordingRequest")
    spec = RecordingSpec.model_validate(composite_recording(body, APP, "app-1", "t")["spec"])
    assert spec.composite.watermark is not None
    assert spec.composite.watermark.url == "https://cdn.example.com/w.png"
    assert spec.composite.watermark.size is not None
    assert (spec.composite.watermark.size.width, spec.composite.watermark.size.height) == (
        200,
        None,
    )
    assert spec.composite.watermark.position == "left top"  # RealtimeKit's default too
    odd = {"url": "https://cdn.example.com/w.png", "position": "centre"}
    with pytest.raises(RequestRefused, match=r"spec.composite.watermark.position"):
        composite_recording(
            {"meeting_id": MEETING, "video_config": {"watermark": odd}}, APP, "a", "t"
        )


def test_the_defaults_are_realtimekit_s() -> None:
    spec = RecordingSpec.model_validate(_start({"meeting_id": MEETING})["spec"])
    assert (spec.composite.video.width, spec.composite.video.height) == (1280, 720)
    assert spec.composite.video.codec == "H264"
    assert spec.storage is not None
    assert spec.storage.bucket == "recordings"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rtmp_out_config": {"rtmp_url": "rtmp://x/live"}}, "rtmp_out_config"),
        ({"interactive_config": {"type": "ID3"}}, "interactive_config"),
        ({"url": "https://example.com/page"}, "url"),
        (
            {"video_config": {"watermark": {"url": "http://x/w.png"}}},
            "video_config.watermark.url",
        ),
        ({"audio_config": {"codec": "MP3"}}, "audio_config.codec"),
        (
            {"video_config": {"codec": "VP8"}, "audio_config": {"codec": "AAC"}},
            "audio_config.codec",
        ),
        ({"audio_config": {"export_file": True}}, "audio_config.export_file"),
        ({"video_config": {"export_file": False}}, "video_config.export_file"),
        ({"storage_config": {"type": "sftp", "host": "h"}}, "storage_config.type"),
        (
            {"storage_config": {"type": "aws", "access_key": "AK", "secret": "S"}},
            "storage_config.access_key",
        ),
        ({"video_config": {"width": 641}}, "video_config.width"),
        ({"storage_config": {"type": "azure", "bucket": "b"}}, "storage_config.type"),
        ({"storage_config": {"type": "aws", "host": "h"}}, "storage_config.host"),
        ({"meeting_id": "my meeting"}, "meeting_id"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_what_tapedeck_does_not_support_is_refused_by_name(
    body: dict[str, Any], field: str
) -> None:
    with pytest.raises(RequestRefused) as refused:
        composite_recording({"meeting_id": MEETING, **body}, APP, "app-1", "team-a")
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


def test_a_meeting_without_a_connector_is_refused_with_the_setting_to_add() -> None:
    with pytest.raises(RequestRefused, match=r"api.apps.app-1.rooms"):
        composite_recording({"meeting_id": "unknown"}, APP, "app-1", "team-a")
    numeric = composite_recording({"meeting_id": "4321"}, APP, "app-1", "team-a")
    assert numeric["spec"]["meeting"]["janus"]["room"] == 4321


def test_a_track_request_records_audio_tracks_only() -> None:
    body = {
        "meeting_id": MEETING,
        "user_ids": ["alice", "bob"],
        "layers": {"default": {"file_name_prefix": "daily", "media_kind": "audio"}},
    }
    validate(body, "StartTrackRecordingRequest")
    spec = RecordingSpec.model_validate(track_recording(body, APP, "app-1", "team-a")["spec"])
    assert not spec.composite.enabled
    assert spec.tracks.enabled
    assert spec.tracks.user_ids == ["alice", "bob"]
    assert spec.file_name_prefix == "daily"
