"""What an object says about the output it holds, kept in its user metadata.

The bot writes these at upload time, so a later attempt (or the operator) can rebuild the
status's `outputs` list from the bucket alone, including segments salvaged from a dead pod.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from tapedeck_bot.contract import Output, content_type_of
from tapedeck_bot.storage.store import ObjectInfo

__all__ = ["output_from_object", "output_metadata"]

# Underscores, not dashes: Azure metadata names must be C# identifiers.
_KIND, _STARTED_AT, _USER_ID = "tapedeck_kind", "tapedeck_started_at", "tapedeck_user_id"


def output_metadata(
    kind: str, started_at: dt.datetime | None, user_id: str | None = None
) -> dict[str, str]:
    metadata = {_KIND: kind}
    if started_at is not None:
        metadata[_STARTED_AT] = started_at.astimezone(dt.UTC).isoformat()
    if user_id is not None:
        metadata[_USER_ID] = user_id
    return metadata


def output_from_object(info: ObjectInfo, *, salvaged: bool = False) -> Output:
    metadata: Mapping[str, str] = info.metadata or {}
    started = metadata.get(_STARTED_AT)
    return Output(
        kind="track" if metadata.get(_KIND) == "track" else "composite",
        key=info.key,
        content_type=info.content_type or content_type_of(info.key),
        bytes=info.size,
        user_id=metadata.get(_USER_ID),
        started_at=dt.datetime.fromisoformat(started) if started else None,
        complete=not salvaged,
        salvaged=salvaged,
    )
