"""Track file names, as RealtimeKit names them:
`{fileNamePrefix}_{userId}_{peerId}_{streamKind}_{mediaKind}_{unixMs}.webm`."""

from __future__ import annotations

import re

__all__ = ["track_file_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def _part(text: str) -> str:
    # `_` separates the fields, and a user id may hold anything: keep names parseable.
    return _UNSAFE.sub("-", text).strip("-") or "unknown"


def track_file_name(
    prefix: str | None,
    user_id: str,
    peer_id: str,
    media_kind: str,
    start_unix_ms: int,
    stream_kind: str = "webcam",
) -> str:
    fields = [_part(user_id), _part(peer_id), stream_kind, media_kind, str(start_unix_ms)]
    if prefix:
        fields.insert(0, _part(prefix))
    return "_".join(fields) + ".webm"
