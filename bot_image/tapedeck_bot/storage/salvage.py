"""Finish what an earlier bot attempt of the same recording left behind.

A bot that dies leaves two things: multipart uploads in the store with the parts it sent,
and, if the pod survived (a container restart), the spool with parts it had not sent yet.
Salvage completes each such upload with the longest run of parts from part 1 on; fMP4 and
WebM cut at a part edge stay playable up to the cut.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from tapedeck_bot.contract import Output
from tapedeck_bot.storage.outputs import content_type_of, output_from_object
from tapedeck_bot.storage.spool import SpoolEntry, read_entries
from tapedeck_bot.storage.store import ObjectStore, StorageError, UploadedPart

__all__ = ["Salvaged", "list_segments", "salvage"]

log = logging.getLogger("tapedeck_bot.storage")


@dataclass(frozen=True)
class Salvaged:
    key: str
    bytes: int
    parts: int
    lost_parts: tuple[int, ...] = ()  # parts after a gap, which cannot be joined on


def _leading_run(parts: dict[int, UploadedPart]) -> tuple[list[UploadedPart], tuple[int, ...]]:
    run: list[UploadedPart] = []
    while len(run) + 1 in parts:
        run.append(parts[len(run) + 1])
    return run, tuple(sorted(set(parts) - {p.number for p in run}))


def _complete(
    store: ObjectStore, key: str, upload_id: str, parts: dict[int, UploadedPart], content_type: str
) -> Salvaged:
    run, lost = _leading_run(parts)
    if not run:
        store.abort_upload(key, upload_id)
        return Salvaged(key, 0, 0, lost)
    store.complete_upload(key, upload_id, run, content_type, {})
    if lost:
        log.warning("salvage dropped parts after a gap", extra={"key": key, "parts": lost})
    return Salvaged(key, sum(p.size for p in run), len(run), lost)


def _from_spool(store: ObjectStore, entry: SpoolEntry) -> Salvaged:
    m = entry.manifest
    files = {n: p for n, p in entry.parts.items() if p.stat().st_size > 0 or n == 1}
    if m.upload_id is None and set(files) <= {1}:
        data = files[1].read_bytes() if files else b""
        store.put(m.key, data, m.content_type, m.metadata)
        return Salvaged(m.key, len(data), 1)
    if m.upload_id and not files:
        try:
            store.head(m.key)
            return Salvaged(m.key, 0, 0)  # completed, and killed before cleaning up
        except StorageError:
            pass
    upload_id = m.upload_id or store.create_upload(m.key, m.content_type, m.metadata)
    parts = {p.number: p for p in store.list_parts(m.key, upload_id)} if m.upload_id else {}
    for number, path in sorted(files.items()):
        data = path.read_bytes()
        etag = store.upload_part(m.key, upload_id, number, data)
        parts[number] = UploadedPart(number, etag, len(data))
    return _complete(store, m.key, upload_id, parts, m.content_type)


def salvage(store: ObjectStore, prefix: str, spool: Path | None = None) -> list[Salvaged]:
    """Complete the uploads under `prefix` that an earlier attempt left incomplete."""
    salvaged: list[Salvaged] = []
    from_spool: set[str] = set()
    for entry in read_entries(spool) if spool else []:
        if not entry.manifest.key.startswith(prefix):
            continue
        try:
            salvaged.append(_from_spool(store, entry))
        except StorageError as exc:  # keep the spool: the next attempt tries again
            log.warning(
                "salvage from spool failed", extra={"key": entry.manifest.key, "error": str(exc)}
            )
            continue
        from_spool.add(entry.manifest.key)
        shutil.rmtree(entry.directory, ignore_errors=True)
    for pending in store.list_uploads(prefix):
        if pending.key in from_spool:
            continue
        parts = {p.number: p for p in store.list_parts(pending.key, pending.upload_id)}
        salvaged.append(
            _complete(store, pending.key, pending.upload_id, parts, content_type_of(pending.key))
        )
    for item in salvaged:
        log.info("salvaged", extra={"key": item.key, "bytes": item.bytes, "parts": item.parts})
    return [s for s in salvaged if s.parts]


def list_segments(
    store: ObjectStore, prefix: str, salvaged: frozenset[str] = frozenset()
) -> list[Output]:
    """Every output of the recording in the store, in the order they started."""
    outputs = [
        output_from_object(store.head(o.key), salvaged=o.key in salvaged)
        for o in store.list_objects(prefix)
    ]
    return sorted(outputs, key=lambda o: (o.started_at is None, o.started_at, o.key))
