"""Copy a recording's outputs to the user's own buckets after the upload.

Objects stream through in parts (never whole in memory). Each destination succeeds or fails
on its own: one bad credential does not stop the copies to the others.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tapedeck_bot.storage.retry import call_with_retries
from tapedeck_bot.storage.store import ObjectStore, StorageError, UploadedPart, complete_once

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
T = TypeVar("T")


def _retried(request: Callable[[], T]) -> T:
    """Outages get a few tries with backoff; a refusal fails this destination at once."""
    return call_with_retries(
        request, what="transfer", stop=threading.Event(), max_refusals=0, max_failures=4
    )


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

    metadata = info.metadata or {}

    def send(data: bytes) -> None:
        nonlocal upload_id
        if upload_id is None:
            upload_id = _retried(lambda: dest.create_upload(dest_key, info.content_type, metadata))
        number, created = len(parts) + 1, upload_id
        etag = _retried(lambda: dest.upload_part(dest_key, created, number, data))
        parts.append(UploadedPart(number, etag, len(data)))
        on_bytes(len(data))

    try:
        for chunk in source.read(key, part_size):
            buffer += chunk
            while len(buffer) >= part_size:
                send(bytes(buffer[:part_size]))
                del buffer[:part_size]
        if upload_id is None:  # smaller than a part
            _retried(lambda: dest.put(dest_key, bytes(buffer), info.content_type, metadata))
            on_bytes(len(buffer))
            return len(buffer)
        if buffer:
            send(bytes(buffer))
        created = upload_id
        _retried(lambda: complete_once(dest, dest_key, created, parts, info.content_type, metadata))
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
