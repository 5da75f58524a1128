"""RealtimeKit's start requests, mapped to a Recording: pure functions, no I/O.

A field tapedeck does not support is refused with its name and the fix, never ignored
(`UnsupportedField`, a 400); so is any field RealtimeKit does not define.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tapedeck_bot.contract import API_VERSION, KIND, RecordingSpec
from tapedeck_operator.api.settings import AppSettings

__all__ = [
    "APP_LABEL",
    "MEETING_LABEL",
    "RecordingAction",
    "RequestRefused",
    "composite_recording",
    "error_field",
    "track_recording",
]

APP_LABEL = "tapedeck.io/realtimekit-app"
MEETING_LABEL = "tapedeck.io/meeting-id"
_STORAGE_TYPES = {"aws": "s3", "digitalocean": "digitalocean", "gcs": "gcs", "azure": "azure"}
# A meeting id is a label value (lists and duplicate checks select on it).
_LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"


def error_field(error: Mapping[str, Any]) -> str:
    """The dotted field name of one pydantic error."""
    return ".".join(str(p) for p in error["loc"])


class RequestRefused(ValueError):
    """A 400: `field` names what was refused, in the request's own spelling."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Watermark(_Strict):
    url: str | None = None
    size: dict[str, int] | None = None
    position: str | None = None


class _Video(_Strict):
    codec: Literal["H264", "VP8"] = "H264"
    width: int = Field(default=1280, ge=16, le=1920, multiple_of=2)
    height: int = Field(default=720, ge=16, le=1920, multiple_of=2)
    export_file: bool = True
    watermark: _Watermark | None = None


class _Audio(_Strict):
    codec: Literal["AAC", "MP3"] | None = None  # unset: AAC in MP4, Opus in WebM
    channel: Literal["mono", "stereo"] = "stereo"
    export_file: bool | None = None


class _Storage(_Strict):
    type: Literal["aws", "azure", "digitalocean", "gcs", "sftp"]
    bucket: str | None = None
    region: str | None = None
    path: str | None = None
    access_key: str | None = None
    secret: str | None = None
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    private_key: str | None = None
    auth_method: str | None = None


class _Start(_Strict):
    meeting_id: str = Field(pattern=_LABEL_VALUE)
    max_seconds: int | None = Field(default=None, ge=60, le=86400)
    file_name_prefix: str | None = None
    allow_multiple_recordings: bool = False
    video_config: _Video = _Video()
    audio_config: _Audio = _Audio()
    storage_config: _Storage | None = None
    rtmp_out_config: dict[str, Any] | None = None
    interactive_config: dict[str, Any] | None = None
    url: str | None = None
    realtimekit_bucket_config: dict[str, Any] | None = None


class _Layer(_Strict):
    file_name_prefix: str | None = None
    media_kind: Literal["audio"] = "audio"


class _StartTracks(_Strict):
    meeting_id: str = Field(pattern=_LABEL_VALUE)
    user_ids: list[str] = []
    layers: dict[str, _Layer] = {}


class RecordingAction(_Strict):
    action: Literal["stop", "pause", "resume"]


def _parse(model: type[BaseModel], body: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = error_field(error) or "body"
        if error["type"] == "extra_forbidden":
            raise RequestRefused(field, "not a field of RealtimeKit's request") from exc
        raise RequestRefused(field, error["msg"]) from exc


def _refuse_unsupported(start: _Start) -> None:
    unsupported = {
        "rtmp_out_config": "livestreaming is not supported; record, then stream the file",
        "interactive_config": "interactive (timed metadata) recordings are not supported",
        "url": "tapedeck records the meeting itself, not a custom recording page",
        "realtimekit_bucket_config": "tapedeck has no RealtimeKit bucket; use storage_config "
        "or the app's storage setting",
    }
    for field, why in unsupported.items():
        if getattr(start, field) is not None:
            raise RequestRefused(field, why)
    if not start.video_config.export_file:
        raise RequestRefused(
            "video_config.export_file", "tapedeck always writes the video: leave it true"
        )
    if start.audio_config.codec == "MP3":
        raise RequestRefused("audio_config.codec", "MP3 is not supported: use AAC")
    if start.audio_config.codec == "AAC" and start.video_config.codec == "VP8":
        raise RequestRefused(
            "audio_config.codec",
            "AAC cannot go in WebM (video_config.codec VP8): leave it unset for Opus",
        )
    if start.audio_config.export_file:
        raise RequestRefused(
            "audio_config.export_file",
            "tapedeck writes no separate audio file (the composite carries the audio, and "
            "tracks give each voice): leave it unset or false",
        )


def _meeting(meeting_id: str, app: AppSettings, app_id: str) -> dict[str, Any]:
    room = app.rooms.get(meeting_id)
    if room is None and re.fullmatch("[0-9]{1,15}", meeting_id):
        room = int(meeting_id)
    if app.janus_url is None or room is None:
        raise RequestRefused(
            "meeting_id",
            f"no connector for meeting {meeting_id!r} in app {app_id!r}: set "
            f"api.apps.{app_id}.janusUrl and api.apps.{app_id}.rooms (or use a numeric "
            "room as the meeting id)",
        )
    return {"id": meeting_id, "janus": {"url": app.janus_url, "room": room}}


def _storage(storage: _Storage | None, app: AppSettings, app_id: str) -> dict[str, Any] | None:
    if storage is None:
        return app.storage.model_dump(by_alias=True, exclude_none=True) if app.storage else None
    if storage.type == "sftp":
        raise RequestRefused("storage_config.type", "sftp is not supported")
    for sftp_only in ("host", "port", "username", "auth_method"):
        if getattr(storage, sftp_only) is not None:
            raise RequestRefused(
                f"storage_config.{sftp_only}", "only for sftp, which tapedeck lacks"
            )
    for secret in ("access_key", "secret", "password", "private_key"):
        if getattr(storage, secret) is not None:
            raise RequestRefused(
                f"storage_config.{secret}",
                "tapedeck never takes credentials in a request; they come from the Secret "
                f"named in api.apps.{app_id}.storage.secretRef",
            )
    if app.storage is None:
        raise RequestRefused(
            "storage_config",
            f"app {app_id!r} has no storage credentials: set api.apps.{app_id}.storage",
        )
    if _STORAGE_TYPES[storage.type] != app.storage.type.value:
        raise RequestRefused(
            "storage_config.type",
            f"app {app_id!r} stores in {app.storage.type.value} with the credentials of "
            f"api.apps.{app_id}.storage; {storage.type} needs other credentials there",
        )
    chosen = {"bucket": storage.bucket, "region": storage.region, "path": storage.path}
    base = app.storage.model_dump(by_alias=True, exclude_none=True)
    return base | {k: v for k, v in chosen.items() if v is not None}


def _manifest(namespace: str, app_id: str, meeting_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    try:  # what the API server's schema would refuse, named here
        RecordingSpec.model_validate(spec)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise RequestRefused(f"(spec.{error_field(error)})", error["msg"]) from exc
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "generateName": "rtk-",
            "namespace": namespace,
            "labels": {APP_LABEL: app_id, MEETING_LABEL: meeting_id},
        },
        "spec": spec,
    }


def _watermark(watermark: _Watermark) -> dict[str, Any]:
    """RealtimeKit's `video_config.watermark` is tapedeck's `composite.watermark`, from a URL."""
    if not (watermark.url or "").startswith("https://"):
        raise RequestRefused(
            "video_config.watermark.url",
            "an https URL of a PNG is required: the operator fetches it once, before the "
            "recording starts",
        )
    fields = {"url": watermark.url, "size": watermark.size, "position": watermark.position}
    return {k: v for k, v in fields.items() if v is not None}


def composite_recording(
    body: Mapping[str, Any], app: AppSettings, app_id: str, namespace: str
) -> dict[str, Any]:
    """The Recording a `POST /recordings` asks for."""
    start: _Start = _parse(_Start, body)
    _refuse_unsupported(start)
    video, audio = start.video_config, start.audio_config
    spec: dict[str, Any] = {
        "meeting": _meeting(start.meeting_id, app, app_id),
        "composite": {
            "video": {"codec": video.codec, "width": video.width, "height": video.height},
            "audio": {"channels": 1 if audio.channel == "mono" else 2}
            | ({"codec": audio.codec} if audio.codec else {}),
        },
        "allowMultipleRecordings": start.allow_multiple_recordings,
    }
    if video.watermark is not None:
        spec["composite"]["watermark"] = _watermark(video.watermark)
    if start.max_seconds is not None:
        spec["maxSeconds"] = start.max_seconds
    if start.file_name_prefix:
        spec["fileNamePrefix"] = start.file_name_prefix
    if (storage := _storage(start.storage_config, app, app_id)) is not None:
        spec["storage"] = storage
    return _manifest(namespace, app_id, start.meeting_id, spec)


def track_recording(
    body: Mapping[str, Any], app: AppSettings, app_id: str, namespace: str
) -> dict[str, Any]:
    """The Recording a `POST /recordings/track` asks for: audio tracks, no composite."""
    start: _StartTracks = _parse(_StartTracks, body)
    prefixes = {layer.file_name_prefix for layer in start.layers.values()} - {None}
    if len(prefixes) > 1:
        raise RequestRefused("layers", "one file_name_prefix for all layers, please")
    spec: dict[str, Any] = {
        "meeting": _meeting(start.meeting_id, app, app_id),
        "composite": {"enabled": False},
        "tracks": {"enabled": True, "mediaKind": "audio", "userIds": start.user_ids},
        # Beside a composite of the same meeting, as RealtimeKit's track recordings run.
        "allowMultipleRecordings": True,
    }
    if prefixes:
        spec["fileNamePrefix"] = prefixes.pop()
    if (storage := _storage(None, app, app_id)) is not None:
        spec["storage"] = storage
    return _manifest(namespace, app_id, start.meeting_id, spec)
