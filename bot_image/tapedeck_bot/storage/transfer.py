"""Copy a recording's outputs to the user's own buckets after the upload.

Objects stream through in parts (never whole in memory). Each destination succeeds or fails
on its own: one bad credential does not stop the copies to the others.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tapedeck_bot.storage.store import ObjectStore, StorageError, UploadedPart

__all__ = ["Destination", "TransferResult", "copy_object", "transfer"]

log = logging.getLogger("tapedeck_bot.storage")


@dataclass(frozen=True)
class Destination:
    store: ObjectStore
    prefix: str  # the destination's `{path}/{recordingId}/`


@dataclass(frozen=True)
class TransferResult:
    destination: str
    keys: tuple[str, ...]  # copied, as named in the destination
    bytes: int
    error: str | None = None


Progress = Callable[[str, int], None]  # (destination, bytes copied so far to it)


def copy_object(
    source: ObjectStore,
    key: str,
    dest: ObjectStore,
    dest_key: str,
    *,
    part_size: int,
    on_bytes: Callable[[int], None] = lambda n: None,
) -> int:
    """Stream one object into a multipart upload of equal parts; returns its size."""
    info = source.head(key)
    upload_id: str | None = None
    parts: list[UploadedPart] = []
    buffer = bytearray()

    def send(data: bytes) -> None:
        nonlocal upload_id
        if upload_id is None:
            upload_id = dest.create_upload(dest_key, info.content_type, info.metadata or {})
        number = len(parts) + 1
        parts.append(
            UploadedPart(number, dest.upload_part(dest_key, upload_id, number, data), len(data))
        )
        on_bytes(len(data))

    try:
        for chunk in source.read(key, part_size):
            buffer += chunk
            while len(buffer) >= part_size:
                send(bytes(buffer[:part_size]))
                del buffer[:part_size]
        if upload_id is None:  # smaller than a part
            dest.put(dest_key, bytes(buffer), info.content_type, info.metadata or {})
            on_bytes(len(buffer))
            return len(buffer)
        if buffer:
            send(bytes(buffer))
        dest.complete_upload(dest_key, upload_id, parts, info.content_type, info.metadata or {})
    except BaseException:
        if upload_id is not None:
            with contextlib.suppress(StorageError):  # else the store's lifecycle drops it
                dest.abort_upload(dest_key, upload_id)
        raise
    return sum(p.size for p in parts)


def transfer(
    source: ObjectStore,
    source_prefix: str,
    keys: Sequence[str],
    destinations: Sequence[Destination],
    *,
    part_size: int,
    on_progress: Progress = lambda d, n: None,
) -> list[TransferResult]:
    results = []
    for dest in destinations:
        copied: list[str] = []
        total = 0

        def count(n: int, name: str = dest.store.description) -> None:
            nonlocal total
            total += n
            on_progress(name, total)

        try:
            for key in keys:
                dest_key = dest.prefix + key.removeprefix(source_prefix)
                copy_object(source, key, dest.store, dest_key, part_size=part_size, on_bytes=count)
                copied.append(dest_key)
            error = None
        except StorageError as exc:
            error = str(exc)
            log.warning(
                "transfer failed", extra={"destination": dest.store.description, "error": error}
            )
        results.append(TransferResult(dest.store.description, tuple(copied), total, error))
    return results
