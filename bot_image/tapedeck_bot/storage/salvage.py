"""Finish what an earlier bot attempt of the same recording left behind.

A bot that dies leaves two things: multipart uploads in the store with the parts it sent,
and, if the pod survived (a container restart), the spool with parts it had not sent yet.
Salvage completes each such upload with the longest run of parts from part 1 on; fMP4 and
WebM cut at a part edge stay playable up to the cut.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tapedeck_bot.contract import Output, content_type_of
from tapedeck_bot.storage.outputs import output_from_object
from tapedeck_bot.storage.retry import call_with_retries
from tapedeck_bot.storage.spool import SpoolEntry, read_entries
from tapedeck_bot.storage.store import (
    ObjectStore,
    PendingUpload,
    StorageError,
    UploadedPart,
    complete_once,
)

__all__ = ["SalvagePlan", "Salvaged", "list_segments", "plan_salvage", "run_salvage", "salvage"]

log = logging.getLogger("tapedeck_bot.storage")

T = TypeVar("T")


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
    store: ObjectStore,
    key: str,
    upload_id: str,
    parts: dict[int, UploadedPart],
    content_type: str,
    metadata: Mapping[str, str],
) -> Salvaged:
    run, lost = _leading_run(parts)
    if not run:
        store.abort_upload(key, upload_id)
        return Salvaged(key, 0, 0, lost)
    complete_once(store, key, upload_id, run, content_type, metadata)
    if lost:
        log.warning("salvage dropped parts after a gap", extra={"key": key, "parts": lost})
    return Salvaged(key, sum(p.size for p in run), len(run), lost)


def _retried(what: str, request: Callable[[], T]) -> T:
    """A few tries: salvage runs beside a recording, and what it cannot finish now stays for
    the next attempt."""
    return call_with_retries(
        request, what=what, stop=threading.Event(), max_refusals=1, max_failures=4
    )


def _from_spool(store: ObjectStore, entry: SpoolEntry) -> Salvaged:
    m = entry.manifest
    files = {n: p for n, p in entry.parts.items() if p.stat().st_size > 0 or n == 1}
    if m.upload_id is None and set(files) <= {1}:
        data = files[1].read_bytes() if files else b""
        _retried("put", lambda: store.put(m.key, data, m.content_type, m.metadata))
        return Salvaged(m.key, len(data), 1)
    if m.upload_id and not files:
        try:
            store.head(m.key)
            return Salvaged(m.key, 0, 0)  # completed, and killed before cleaning up
        except StorageError:
            pass
    upload_id = m.upload_id or _retried(
        "create", lambda: store.create_upload(m.key, m.content_type, m.metadata)
    )
    parts: dict[int, UploadedPart] = {}
    if m.upload_id:
        parts = {p.number: p for p in _retried("list", lambda: store.list_parts(m.key, upload_id))}
    for number, path in sorted(files.items()):
        data = path.read_bytes()
        etag = _retried("part", lambda: store.upload_part(m.key, upload_id, number, data))  # noqa: B023
        parts[number] = UploadedPart(number, etag, len(data))
    return _retried(
        "complete", lambda: _complete(store, m.key, upload_id, parts, m.content_type, m.metadata)
    )


@dataclass(frozen=True)
class SalvagePlan:
    """What earlier attempts left, taken before this attempt opens its own uploads (which
    must not be mistaken for leftovers)."""

    entries: tuple[SpoolEntry, ...]
    pending: tuple[PendingUpload, ...]  # in the store, with no spool entry of their own


def plan_salvage(store: ObjectStore, prefix: str, spool: Path | None) -> SalvagePlan:
    entries = (
        tuple(e for e in read_entries(spool) if e.manifest.key.startswith(prefix)) if spool else ()
    )
    in_spool = {e.manifest.key for e in entries}
    listed = _retried("list uploads", lambda: store.list_uploads(prefix))
    return SalvagePlan(entries, tuple(u for u in listed if u.key not in in_spool))


def run_salvage(store: ObjectStore, plan: SalvagePlan) -> list[Salvaged]:
    """Complete the planned uploads; one that fails is left as it is for the next attempt."""
    salvaged: list[Salvaged] = []
    for entry in plan.entries:
        try:
            salvaged.append(_from_spool(store, entry))
        except StorageError as exc:  # keep the spool, and the store's parts, as they are
            log.warning(
                "salvage from spool failed", extra={"key": entry.manifest.key, "error": str(exc)}
            )
            continue
        shutil.rmtree(entry.directory, ignore_errors=True)
    for pending in plan.pending:
        key, upload_id = pending.key, pending.upload_id
        try:
            listed = _retried("list", lambda: store.list_parts(key, upload_id))  # noqa: B023
            parts = {p.number: p for p in listed}
            content_type = content_type_of(key)
            salvaged.append(
                _retried(
                    "complete",
                    lambda: _complete(store, key, upload_id, parts, content_type, {}),  # noqa: B023
                )
            )
        except StorageError as exc:
            log.warning("salvage failed", extra={"key": key, "error": str(exc)})
    for item in salvaged:
        if item.parts:
            log.info("salvaged", extra={"key": item.key, "bytes": item.bytes, "parts": item.parts})
    return [s for s in salvaged if s.parts]


def salvage(store: ObjectStore, prefix: str, spool: Path | None = None) -> list[Salvaged]:
    """Complete the uploads under `prefix` that an earlier attempt left incomplete."""
    return run_salvage(store, plan_salvage(store, prefix, spool))


def list_segments(
    store: ObjectStore, prefix: str, salvaged: frozenset[str] = frozenset()
) -> list[Output]:
    """Every output of the recording in the store, in the order they started."""
    outputs = [
        output_from_object(store.head(o.key), salvaged=o.key in salvaged)
        for o in store.list_objects(prefix)
    ]
    return sorted(outputs, key=lambda o: (o.started_at is None, o.started_at, o.key))
