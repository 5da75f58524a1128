"""What a recording's files hold: the kinds of stream, and the one content-type table.

A key says what its object holds, so the bot, the salvage of a dead pod's spool and the
operator all derive the content type from the key alone, by this one table.
"""

from __future__ import annotations

import re
from typing import Literal

from tapedeck_bot.contract.spec import MediaKind

__all__ = ["STREAM_KINDS", "StreamKind", "content_type_of"]

StreamKind = Literal["audio", "video"]  # one stream of a participant

# spec.tracks.mediaKind -> the streams that get track files
STREAM_KINDS: dict[MediaKind, frozenset[StreamKind]] = {
    MediaKind.AUDIO: frozenset({"audio"}),
    MediaKind.VIDEO: frozenset({"video"}),
    MediaKind.BOTH: frozenset({"audio", "video"}),
}

# (pattern on the key, content type), first match wins. Audio track files are named
# `…_{streamKind}_audio_{unixMs}.webm` (tracks/naming.py); every other WebM holds video.
_CONTENT_TYPES = (
    (re.compile(r"_audio_\d+\.webm$"), "audio/webm"),
    (re.compile(r"\.webm$"), "video/webm"),
    (re.compile(r"\.mp4$"), "video/mp4"),
)


def content_type_of(key: str) -> str:
    return next(
        (kind for pattern, kind in _CONTENT_TYPES if pattern.search(key)),
        "application/octet-stream",
    )
