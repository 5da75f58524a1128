"""Copies to `spec.transfers[]`: each destination's state, attempts and retries. Pure;
`aftercare` runs the copies (`tapedeck_bot.storage.transfer`) in threads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from tapedeck_bot.contract import StorageSpec, TransferState, TransferStatus
from tapedeck_bot.storage import TransferResult
from tapedeck_operator.backoff import backoff_delay
from tapedeck_operator.config import TransferSettings

__all__ = ["destination_name", "due_transfers", "finished", "started", "transfer_entries"]


def destination_name(spec: StorageSpec) -> str:
    """Type, endpoint and bucket: enough to tell destinations apart, never a credential."""
    where = spec.endpoint or spec.region or spec.account_id or "default endpoint"
    path = f"/{spec.path}" if spec.path else ""
    return f"{spec.type.value} {where} {spec.bucket}{path}"[:512]


def transfer_entries(
    destinations: Sequence[StorageSpec], existing: Sequence[TransferStatus]
) -> list[TransferStatus]:
    """One entry per destination, matched by what it is (not by its place in the list, which
    an edit may change); `index` is its place now. A destination listed twice is copied once."""
    by_name = {t.destination: t for t in existing}
    entries: dict[str, TransferStatus] = {}
    for i, spec in enumerate(destinations):
        name = destination_name(spec)
        if name not in entries:
            known = by_name.get(name)
            entries[name] = (
                known.model_copy(update={"index": i})
                if known
                else TransferStatus(index=i, destination=name)
            )
    return list(entries.values())


def due_transfers(
    entries: Sequence[TransferStatus], running: Collection[str], now: dt.datetime
) -> list[str]:
    """Destinations to start now. One left `Copying` by an operator that died mid-copy is
    started again (a copy completes each object atomically, so a repeat is harmless)."""
    due = []
    for entry in entries:
        if entry.destination in running:
            continue
        waiting = entry.next_attempt_at is not None and entry.next_attempt_at > now
        if entry.state is TransferState.COPYING or (
            entry.state is TransferState.PENDING and not waiting
        ):
            due.append(entry.destination)
    return due


def started(entry: TransferStatus) -> TransferStatus:
    return entry.model_copy(
        update={"state": TransferState.COPYING, "attempts": entry.attempts + 1, "error": None}
    )


def finished(
    entry: TransferStatus,
    result: TransferResult,
    now: dt.datetime,
    settings: TransferSettings,
    jitter: float,
) -> TransferStatus:
    update: dict[str, Any] = {
        "bytes": result.bytes,
        "objects": len(result.keys),
        "next_attempt_at": None,
    }
    if result.error is None:
        return entry.model_copy(
            update={**update, "state": TransferState.SUCCEEDED, "finished_at": now}
        )
    update["error"] = result.error[:1024]
    if entry.attempts >= settings.max_attempts:
        return entry.model_copy(
            update={**update, "state": TransferState.FAILED, "finished_at": now}
        )
    delay = backoff_delay(
        entry.attempts,
        initial=settings.initial_backoff_seconds,
        cap=settings.max_backoff_seconds,
        jitter=jitter,
    )
    update["next_attempt_at"] = now + dt.timedelta(seconds=delay)
    return entry.model_copy(update={**update, "state": TransferState.PENDING})
