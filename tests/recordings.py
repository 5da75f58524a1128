"""Recording manifests shared by the contract and API-server tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tapedeck_bot.contract import API_VERSION, KIND


def recording(name: str = "standup", **spec_overrides: Any) -> dict[str, Any]:
    """A minimal valid Recording; keyword arguments replace top-level spec fields."""
    spec: dict[str, Any] = {
        "meeting": {
            "id": "standup-2026-11-26",
            "janus": {"url": "http://127.0.0.1:8088/janus", "room": 1234},
        },
    }
    spec.update(spec_overrides)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


@dataclass(frozen=True)
class Invalid:
    """A spec the API server must refuse, the field its message names, and what it says."""

    id: str
    spec: dict[str, Any]
    field: str
    says: str
    cel: bool = False  # the message is ours (a CEL rule), so pydantic says the same


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = copy.deepcopy(base or recording()["spec"])
    node = spec
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return spec


_SECRET = {"name": "storage-creds"}
_JANUS = {"url": "http://127.0.0.1:8088/janus", "room": 1}
_WHEP = {"url": "https://sfu.example.com/whep/stage", "userId": "stage"}
_WATERMARK = {"url": "https://cdn.example.com/logo.png"}
_LOGO = {"name": "branding", "key": "logo.png"}
_STORAGE = {
    "type": "s3",
    "bucket": "recordings",
    "region": "us-east-1",
    "secretRef": {"name": "s3-creds"},
}

INVALID: list[Invalid] = [
    Invalid(
        "no-connector",
        _with("meeting", {"id": "m"}),
        "spec.meeting",
        "exactly one connector must be set",
        cel=True,
    ),
    Invalid(
        "two-connectors",
        _with("meeting", {"id": "m", "janus": _JANUS, "whep": {"endpoints": [_WHEP]}}),
        "spec.meeting",
        "exactly one connector must be set",
        cel=True,
    ),
    Invalid(
        "whep-same-user-twice",
        _with(
            "meeting", {"id": "m", "whep": {"endpoints": [_WHEP, {**_WHEP, "url": "https://x/"}]}}
        ),
        "spec.meeting.whep",
        "userId must be unique",
        cel=True,
    ),
    Invalid(
        "whep-no-endpoints",
        _with("meeting", {"id": "m", "whep": {"endpoints": []}}),
        "spec.meeting.whep.endpoints",
        "should have at least 1 item",
    ),
    Invalid(
        "whep-credentials-in-url",
        _with("meeting", {"id": "m", "whep": {"endpoints": [{**_WHEP, "url": "https://u:p@w/"}]}}),
        "spec.meeting.whep.endpoints[0].url",
        "should match",
    ),
    Invalid(
        "vp8-with-aac",
        _with("composite", {"video": {"codec": "VP8"}, "audio": {"codec": "AAC"}}),
        "spec.composite",
        "AAC cannot go with VP8",
        cel=True,
    ),
    Invalid(
        "h264-with-vorbis",
        _with("composite", {"audio": {"codec": "VORBIS"}}),
        "spec.composite",
        "VORBIS cannot go with H264",
        cel=True,
    ),
    Invalid(
        "watermark-two-images",
        _with("composite", {"watermark": {**_WATERMARK, "configMapKeyRef": _LOGO}}),
        "spec.composite.watermark",
        "exactly one image",
        cel=True,
    ),
    Invalid(
        "watermark-no-image",
        _with("composite", {"watermark": {"position": "left top"}}),
        "spec.composite.watermark",
        "exactly one image",
        cel=True,
    ),
    Invalid(
        "watermark-plain-http",
        _with("composite", {"watermark": {"url": "http://cdn.example.com/logo.png"}}),
        "spec.composite.watermark.url",
        "should match",
    ),
    Invalid(
        "watermark-unknown-position",
        _with("composite", {"watermark": {**_WATERMARK, "position": "centre"}}),
        "spec.composite.watermark.position",
        "left top",
    ),
    Invalid(
        "watermark-size-empty",
        _with("composite", {"watermark": {**_WATERMARK, "size": {}}}),
        "spec.composite.watermark.size",
        "needs width, height or both",
        cel=True,
    ),
    Invalid(
        "watermark-zero-width",
        _with("composite", {"watermark": {**_WATERMARK, "size": {"width": 0}}}),
        "spec.composite.watermark.size.width",
        "greater than or equal to 1",
    ),
    Invalid(
        "watermark-wider-than-video",
        _with(
            "composite",
            {
                "video": {"width": 640, "height": 360},
                "watermark": {**_WATERMARK, "size": {"width": 641}},
            },
        ),
        "spec.composite",
        "must fit composite.video",
        cel=True,
    ),
    Invalid(
        "odd-width",
        _with("composite", {"video": {"width": 1281}}),
        "spec.composite.video.width",
        "multiple of 2",
    ),
    Invalid(
        "too-wide",
        _with("composite", {"video": {"width": 3840}}),
        "spec.composite.video.width",
        "less than or equal to 1920",
    ),
    Invalid(
        "too-short",
        _with("composite", {"video": {"height": 8}}),
        "spec.composite.video.height",
        "greater than or equal to 16",
    ),
    Invalid(
        "unknown-codec",
        _with("composite", {"video": {"codec": "H265"}}),
        "spec.composite.video.codec",
        'Unsupported value: "H265"',
    ),
    Invalid(
        "max-seconds-too-small",
        _with("maxSeconds", 30),
        "spec.maxSeconds",
        "greater than or equal to 60",
    ),
    Invalid(
        "max-seconds-too-large",
        _with("maxSeconds", 90000),
        "spec.maxSeconds",
        "less than or equal to 86400",
    ),
    Invalid(
        "unknown-state", _with("state", "Running"), "spec.state", 'Unsupported value: "Running"'
    ),
    Invalid(
        "janus-url-scheme",
        _with("meeting", {"id": "m", "janus": {"url": "ftp://x", "room": 1}}),
        "spec.meeting.janus.url",
        "should match",
    ),
    Invalid(
        "janus-room-zero",
        _with("meeting", {"id": "m", "janus": {**_JANUS, "room": 0}}),
        "spec.meeting.janus.room",
        "greater than or equal to 1",
    ),
    Invalid(
        "unknown-storage-type",
        _with("storage", {**_STORAGE, "type": "minio"}),
        "spec.storage.type",
        'Unsupported value: "minio"',
    ),
    Invalid(
        "storage-without-credentials",
        _with("storage", {"type": "s3", "bucket": "recordings"}),
        "spec.storage.secretRef",
        "Required value",
    ),
    Invalid(
        "bucket-uppercase",
        _with("storage", {**_STORAGE, "bucket": "My_Bucket"}),
        "spec.storage.bucket",
        "should match",
    ),
    Invalid(
        "r2-without-account",
        _with("storage", {"bucket": "recordings", "secretRef": {"name": "r2"}}),
        "spec.storage",
        "storage.accountId is required for type r2",
        cel=True,
    ),
    Invalid(
        "account-id-on-s3",
        _with("storage", {**_STORAGE, "accountId": "0" * 32}),
        "spec.storage",
        "apply to type r2 only",
        cel=True,
    ),
    Invalid(
        "spaces-without-region",
        _with("transfers", [{"type": "digitalocean", "bucket": "rec", "secretRef": _SECRET}]),
        "spec.transfers[0]",
        "storage.region is required",
        cel=True,
    ),
    Invalid(
        "r2-account-id-format",
        _with("storage", {"bucket": "recordings", "accountId": "ACME", "secretRef": _SECRET}),
        "spec.storage.accountId",
        "should match",
    ),
    Invalid(
        "endpoint-with-credentials",
        _with("transfers", [{**_STORAGE, "endpoint": "https://AKIA:wJal@s3.example.com"}]),
        "spec.transfers[0].endpoint",
        "should match",
    ),
    Invalid(
        "webhook-without-secret",
        _with("webhooks", [{"url": "https://hooks.example/rec"}]),
        "spec.webhooks[0].secretRef",
        "Required value",
    ),
    Invalid(
        "prefix-with-slash",
        _with("fileNamePrefix", "../etc"),
        "spec.fileNamePrefix",
        "should match",
    ),
    Invalid(
        "no-output",
        _with("tracks", {"enabled": False}, _with("composite", {"enabled": False})),
        "spec",
        "enable at least one output",
        cel=True,
    ),
    Invalid(
        "meeting-without-id",
        _with("meeting", {"janus": _JANUS}),
        "spec.meeting.id",
        "Required value",
    ),
]
