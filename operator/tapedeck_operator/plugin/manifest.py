"""The Recording that `kubectl tapedeck start` creates: a pure function of its arguments,
checked by the contract's own models so that a bad argument fails before the API server."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tapedeck_bot.contract import API_VERSION, KIND, RecordingSpec

__all__ = ["StartRequest", "recording_for", "recording_name"]

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
# The spec field -> the argument of `kubectl tapedeck start` that sets it.
_FLAGS = {
    "meeting.id": "MEETING_ID",
    "meeting.janus.url": "--janus",
    "meeting.janus.room": "--room",
    "composite.video.codec": "--codec",
    "composite.video.layout": "--layout",
    "maxSeconds": "--max-seconds",
}


@dataclass(frozen=True)
class StartRequest:
    meeting_id: str
    janus_url: str
    room: int
    name: str | None = None
    tracks: bool = False
    composite: bool = True
    codec: str = "H264"
    layout: str = "grid"
    max_seconds: int | None = None


def recording_name(meeting_id: str) -> str:
    """A Recording name from a meeting id: lowercase, DNS-1123, at most 63 characters."""
    name = _NOT_DNS.sub("-", meeting_id.lower()).strip("-")[:63].rstrip("-")
    if not name:
        raise ValueError(f"cannot make a Recording name from meeting id {meeting_id!r}: use --name")
    return name


def recording_for(request: StartRequest) -> dict[str, Any]:
    """The Recording manifest; ValueError names the argument to fix."""
    spec: dict[str, Any] = {
        "meeting": {
            "id": request.meeting_id,
            "janus": {"url": request.janus_url, "room": request.room},
        },
    }
    if request.composite:
        spec["composite"] = {"video": {"codec": request.codec, "layout": request.layout}}
    else:
        spec["composite"] = {"enabled": False}
    if request.tracks:
        spec["tracks"] = {"enabled": True}
    if request.max_seconds is not None:
        spec["maxSeconds"] = request.max_seconds
    try:
        RecordingSpec.model_validate(spec)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        flag = _FLAGS.get(field, "the arguments")
        raise ValueError(f"{flag}: {first['msg']} (spec.{field})") from None
    name = request.name or recording_name(request.meeting_id)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": spec,
    }
