"""The Recording spec: what a user asks for, as the API server stores it.

These models are the single source of the CRD schema (see `crd.py`). Each CEL rule the API
server enforces is mirrored by a pydantic validator, so the bot rejects the same configs with
the same message when it is run outside Kubernetes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from tapedeck_bot.contract.base import CamelModel, cel

__all__ = [
    "WATERMARK_MAX_PIXELS",
    "AudioCodec",
    "CompositeAudio",
    "CompositeSpec",
    "CompositeVideo",
    "ConfigMapKeyRef",
    "DesiredState",
    "JanusConnector",
    "Layout",
    "MediaKind",
    "Meeting",
    "R2Jurisdiction",
    "RecordingSpec",
    "SecretKeyRef",
    "SecretRef",
    "StorageSpec",
    "StorageType",
    "TracksSpec",
    "VideoCodec",
    "Watermark",
    "WatermarkPosition",
    "WatermarkSize",
    "WebhookSpec",
    "WhepConnector",
    "WhepEndpoint",
]

# Kubernetes object names (RFC 1123 subdomain) and Secret data keys.
_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
_HTTP_URL = r"^https?://[^\s]+$"
# No user info (https://key:secret@host): credentials belong in the Secret, not in the spec,
# which the status, Events and tombstones repeat.
_ENDPOINT_URL = r"^https?://[^\s/@]+(/[^\s]*)?$"
_IMAGE_URL = r"^https://[^\s/@]+(/[^\s]*)?$"


class DesiredState(StrEnum):
    RECORDING = "Recording"
    PAUSED = "Paused"
    STOPPED = "Stopped"


class VideoCodec(StrEnum):
    H264 = "H264"
    VP8 = "VP8"


class AudioCodec(StrEnum):
    AAC = "AAC"
    OPUS = "OPUS"
    VORBIS = "VORBIS"


class Layout(StrEnum):
    GRID = "grid"
    SPEAKER = "speaker"


class MediaKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"
    BOTH = "both"


class StorageType(StrEnum):
    R2 = "r2"
    S3 = "s3"
    DIGITALOCEAN = "digitalocean"
    GCS = "gcs"
    AZURE = "azure"


# Which audio codecs each video codec's container can carry: H.264 goes to MP4, VP8 to WebM.
COMPATIBLE_AUDIO: dict[VideoCodec, tuple[AudioCodec, ...]] = {
    VideoCodec.H264: (AudioCodec.AAC, AudioCodec.OPUS),
    VideoCodec.VP8: (AudioCodec.OPUS, AudioCodec.VORBIS),
}
DEFAULT_AUDIO: dict[VideoCodec, AudioCodec] = {
    VideoCodec.H264: AudioCodec.AAC,
    VideoCodec.VP8: AudioCodec.OPUS,
}


class SecretKeyRef(CamelModel):
    """One key of a Secret in the Recording's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=_NAME)]
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=_SECRET_KEY)]


class ConfigMapKeyRef(CamelModel):
    """One key of a ConfigMap in the Recording's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=_NAME)]
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=_SECRET_KEY)]


class SecretRef(CamelModel):
    """A whole Secret in the Recording's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=_NAME)]


class JanusConnector(CamelModel):
    """A Janus VideoRoom: its HTTP(S) or WebSocket endpoint and the numeric room id."""

    url: Annotated[str, Field(max_length=2048, pattern=r"^(https?|wss?)://[^\s]+$")]
    room: Annotated[int, Field(ge=1, le=2**53 - 1)]
    pin_secret_ref: SecretKeyRef | None = None


class WhepEndpoint(CamelModel):
    """One WHEP (WebRTC-HTTP egress) stream: one participant of the recording."""

    url: Annotated[str, Field(max_length=2048, pattern=_ENDPOINT_URL)]
    user_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=256,
            description="the participant's id in the status, webhooks and track files",
        ),
    ]
    display_name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="sent as `Authorization: Bearer <token>`"
    )


_UNIQUE_USERS = "meeting.whep.endpoints[].userId must be unique: each endpoint is one participant"


@cel(
    "self.endpoints.all(e, self.endpoints.filter(f, f.userId == e.userId).size() == 1)",
    _UNIQUE_USERS,
)
class WhepConnector(CamelModel):
    """Streams played out by WHEP servers (draft-ietf-wish-whep), each one participant."""

    endpoints: Annotated[list[WhepEndpoint], Field(min_length=1, max_length=16)]

    @model_validator(mode="after")
    def _unique_users(self) -> WhepConnector:
        users = [e.user_id for e in self.endpoints]
        if len(set(users)) != len(users):
            raise ValueError(_UNIQUE_USERS)
        return self


_ONE_CONNECTOR = "exactly one connector must be set: meeting.janus or meeting.whep"


@cel("has(self.janus) != has(self.whep)", _ONE_CONNECTOR)
class Meeting(CamelModel):
    """Which meeting to record. Immutable: a Recording records one meeting."""

    id: Annotated[
        str,
        Field(min_length=1, max_length=256, description="your meeting's id, echoed in webhooks"),
    ]
    janus: JanusConnector | None = None
    whep: WhepConnector | None = None

    @model_validator(mode="after")
    def _one_connector(self) -> Meeting:
        if (self.janus is None) == (self.whep is None):
            raise ValueError(_ONE_CONNECTOR)
        return self


_EVEN = "must be even (H.264 and VP8 encode whole 2x2 chroma blocks); use e.g. 1280x720"


class CompositeVideo(CamelModel):
    codec: VideoCodec = VideoCodec.H264
    width: Annotated[int, Field(ge=16, le=1920, multiple_of=2, description=_EVEN)] = 1280
    height: Annotated[int, Field(ge=16, le=1920, multiple_of=2, description=_EVEN)] = 720
    fps: Annotated[int, Field(ge=1, le=60)] = 30
    layout: Layout = Layout.GRID


class CompositeAudio(CamelModel):
    codec: AudioCodec | None = Field(
        default=None, description="AAC with H264 (MP4) and OPUS with VP8 (WebM) when unset"
    )
    channels: Annotated[int, Field(ge=1, le=2)] = 2


class WatermarkPosition(StrEnum):
    LEFT_TOP = "left top"
    RIGHT_TOP = "right top"
    LEFT_BOTTOM = "left bottom"
    RIGHT_BOTTOM = "right bottom"


_SOME_SIZE = "composite.watermark.size needs width, height or both (the other keeps the aspect)"


@cel("has(self.width) || has(self.height)", _SOME_SIZE)
class WatermarkSize(CamelModel):
    """Pixels in the video; with one of the two, the other follows the image's aspect."""

    width: Annotated[int, Field(ge=1, le=1920)] | None = None
    height: Annotated[int, Field(ge=1, le=1920)] | None = None

    @model_validator(mode="after")
    def _some_size(self) -> WatermarkSize:
        if self.width is None and self.height is None:
            raise ValueError(_SOME_SIZE)
        return self


_ONE_IMAGE = "composite.watermark needs exactly one image: url or configMapKeyRef"
# The most pixels a watermark image may have, checked by the operator and the bot before it
# is decoded: a logo is a few hundred pixels wide, and a crafted PNG of 50,000 x 50,000 would
# take gigabytes to decode.
WATERMARK_MAX_PIXELS = 4096 * 4096


@cel("has(self.url) != has(self.configMapKeyRef)", _ONE_IMAGE)
class Watermark(CamelModel):
    """An image drawn over every frame of the composite, its alpha kept (RealtimeKit's
    `video_config.watermark`)."""

    url: (
        Annotated[
            str,
            Field(
                max_length=2048,
                pattern=_IMAGE_URL,
                description="a PNG fetched once by the operator before the recording starts",
            ),
        ]
        | None
    ) = None
    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None, description="a PNG in a ConfigMap key (binaryData)"
    )
    size: WatermarkSize | None = Field(
        default=None, description="the image's own size when unset, shrunk to fit the video"
    )
    position: WatermarkPosition = WatermarkPosition.LEFT_TOP

    @model_validator(mode="after")
    def _one_image(self) -> Watermark:
        if (self.url is None) == (self.config_map_key_ref is None):
            raise ValueError(_ONE_IMAGE)
        return self


_NO_AAC_IN_WEBM = "composite.audio.codec AAC cannot go with VP8 (WebM): use OPUS or VORBIS"
_NO_VORBIS_IN_MP4 = "composite.audio.codec VORBIS cannot go with H264 (MP4): use AAC or OPUS"
_WATERMARK_FITS = (
    "composite.watermark.size must fit composite.video's width and height: make it smaller"
)


@cel(
    "!(self.video.codec == 'VP8' && has(self.audio.codec) && self.audio.codec == 'AAC')",
    _NO_AAC_IN_WEBM,
)
@cel(
    "!(self.video.codec == 'H264' && has(self.audio.codec) && self.audio.codec == 'VORBIS')",
    _NO_VORBIS_IN_MP4,
)
@cel(
    "!has(self.watermark) || !has(self.watermark.size) || "
    "((!has(self.watermark.size.width) || self.watermark.size.width <= self.video.width) && "
    "(!has(self.watermark.size.height) || self.watermark.size.height <= self.video.height))",
    _WATERMARK_FITS,
)
class CompositeSpec(CamelModel):
    """One file with every participant's video in a layout and the mixed audio."""

    enabled: bool = True
    video: CompositeVideo = CompositeVideo()
    audio: CompositeAudio = CompositeAudio()
    labels: bool = Field(
        default=True,
        description="each tile shows the participant's name; off for video you post-process",
    )
    speaker_highlight: bool = Field(
        default=True, description="a border around the tile of whoever is speaking"
    )
    watermark: Watermark | None = None

    @model_validator(mode="after")
    def _codecs_fit_container(self) -> CompositeSpec:
        if (
            self.audio.codec is not None
            and self.audio.codec not in COMPATIBLE_AUDIO[self.video.codec]
        ):
            raise ValueError(
                _NO_AAC_IN_WEBM if self.video.codec is VideoCodec.VP8 else _NO_VORBIS_IN_MP4
            )
        return self

    @model_validator(mode="after")
    def _watermark_fits(self) -> CompositeSpec:
        size = self.watermark.size if self.watermark else None
        if size is not None and (
            (size.width or 0) > self.video.width or (size.height or 0) > self.video.height
        ):
            raise ValueError(_WATERMARK_FITS)
        return self

    @property
    def audio_codec(self) -> AudioCodec:
        """The audio codec in effect, filling the container's default when unset."""
        return self.audio.codec or DEFAULT_AUDIO[self.video.codec]


class TracksSpec(CamelModel):
    """One file per participant session."""

    enabled: bool = False
    user_ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=256)]],
        Field(max_length=100, description="record only these participants; empty means all"),
    ] = []
    media_kind: MediaKind = MediaKind.AUDIO


class R2Jurisdiction(StrEnum):
    EU = "eu"
    FEDRAMP = "fedramp"


_R2_NEEDS_ACCOUNT = (
    "storage.accountId is required for type r2 (your Cloudflare account id), "
    "unless storage.endpoint is set"
)
_R2_ONLY = "storage.accountId and storage.jurisdiction apply to type r2 only"
_NEEDS_REGION = "storage.region is required for types s3 and digitalocean (e.g. us-east-1, nyc3)"


@cel("self.type != 'r2' || has(self.accountId) || has(self.endpoint)", _R2_NEEDS_ACCOUNT)
@cel("self.type == 'r2' || (!has(self.accountId) && !has(self.jurisdiction))", _R2_ONLY)
@cel("!(self.type in ['s3', 'digitalocean']) || has(self.region)", _NEEDS_REGION)
class StorageSpec(CamelModel):
    """An object-storage destination. Credentials come from a Secret, never from the spec.

    The Secret holds `accessKeyId` and `secretAccessKey` (R2, S3, DigitalOcean Spaces, GCS
    HMAC keys) or `accountName` and `accountKey` (Azure Blob).
    """

    type: StorageType = StorageType.R2
    bucket: Annotated[
        str,
        Field(
            min_length=3,
            max_length=63,
            pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
            description="bucket (or Azure container) name",
        ),
    ]
    region: Annotated[str, Field(max_length=64)] | None = None
    endpoint: (
        Annotated[
            str,
            Field(
                max_length=2048,
                pattern=_ENDPOINT_URL,
                description="https://host[:port][/path], without user info (credentials go in "
                "the Secret)",
            ),
        ]
        | None
    ) = None
    path: (
        Annotated[
            str,
            Field(
                max_length=512,
                pattern=r"^[^/\s][^\s]*$",
                description="key prefix; must not start with '/'",
            ),
        ]
        | None
    ) = None
    account_id: (
        Annotated[
            str,
            Field(pattern=r"^[0-9a-f]{32}$", description="Cloudflare account id (type r2)"),
        ]
        | None
    ) = None
    jurisdiction: R2Jurisdiction | None = Field(
        default=None, description="R2 jurisdiction of the bucket: eu or fedramp (type r2)"
    )
    secret_ref: SecretRef

    @model_validator(mode="after")
    def _provider_fields(self) -> StorageSpec:
        r2 = self.type is StorageType.R2
        if r2 and self.account_id is None and self.endpoint is None:
            raise ValueError(_R2_NEEDS_ACCOUNT)
        if not r2 and (self.account_id is not None or self.jurisdiction is not None):
            raise ValueError(_R2_ONLY)
        if self.type in (StorageType.S3, StorageType.DIGITALOCEAN) and self.region is None:
            raise ValueError(_NEEDS_REGION)
        return self


class WebhookSpec(CamelModel):
    """Where to POST signed `recording.statusUpdate` events (Standard Webhooks)."""

    url: Annotated[str, Field(max_length=2048, pattern=_HTTP_URL)]
    secret_ref: SecretKeyRef


_STOPPED_IS_FINAL = "spec.state cannot leave Stopped: create a new Recording instead"


@cel(
    "self.composite.enabled || self.tracks.enabled",
    "enable at least one output: composite.enabled or tracks.enabled",
)
class RecordingSpec(CamelModel):
    meeting: Annotated[
        Meeting,
        Field(
            json_schema_extra={
                "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "spec.meeting is immutable"}
                ]
            }
        ),
    ]
    state: Annotated[
        DesiredState,
        Field(
            json_schema_extra={
                "x-kubernetes-validations": [
                    {
                        "rule": "oldSelf != 'Stopped' || self == 'Stopped'",
                        "message": _STOPPED_IS_FINAL,
                    }
                ]
            }
        ),
    ] = DesiredState.RECORDING
    composite: CompositeSpec = CompositeSpec()
    tracks: TracksSpec = TracksSpec()
    max_seconds: Annotated[
        int, Field(ge=60, le=86400, description="stop with MAX_SECONDS after this long")
    ] = 86400
    idle_timeout_seconds: Annotated[
        int,
        Field(ge=1, le=86400, description="stop with ALL_PEERS_LEFT once empty for this long"),
    ] = 60
    file_name_prefix: (
        Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] | None
    ) = None
    storage: StorageSpec | None = Field(
        default=None, description="where to upload; the Helm chart's default bucket when unset"
    )
    transfers: Annotated[
        list[StorageSpec], Field(max_length=8, description="copies made after the upload")
    ] = []
    retention_days: (
        Annotated[
            int,
            Field(
                ge=1,
                le=3650,
                description="days to keep the outputs in spec.storage; the operator's "
                "retention.days (7 by default) when unset",
            ),
        ]
        | None
    ) = None
    webhooks: Annotated[list[WebhookSpec], Field(max_length=8)] = []
    allow_multiple_recordings: bool = Field(
        default=False,
        description="allow another active Recording of the same meeting in this namespace",
    )

    @property
    def drawn_watermark(self) -> Watermark | None:
        """The watermark a bot draws: none when no composite is recorded."""
        return self.composite.watermark if self.composite.enabled else None

    @model_validator(mode="after")
    def _some_output(self) -> RecordingSpec:
        if not (self.composite.enabled or self.tracks.enabled):
            raise ValueError("enable at least one output: composite.enabled or tracks.enabled")
        return self
