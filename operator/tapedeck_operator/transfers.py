"""Copies to `spec.transfers[]`: each destination's state, attempts and retries. Pure;
`aftercare` runs the copies (`tapedeck_bot.storage.transfer`) in threads."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Collection, Sequence
from typing import Any

from tapedeck_bot.contract import StorageSpec, TransferState, TransferStatus
from tapedeck_bot.storage import TransferResult
from tapedeck_operator.backoff import backoff_delay
from tapedeck_operator.config import TransferSettings

__all__ = ["destination_name", "due_transfers", "finished", "started", "transfer_entries"]


def destination_name(spec: StorageSpec) -> str:
    """Type, endpoint and bucket: enough to tell destinations apart, never a credential."""
    endpoint = _without_userinfo(spec.endpoint) if spec.endpoint else None
    where = endpoint or spec.region or spec.account_id or "default endpoint"
    path = f"/{spec.path}" if spec.path else ""
    return f"{spec.type.value} {where} {spec.bucket}{path}"[:512]


def _without_userinfo(url: str) -> str:
    """An endpoint may carry user info (https://key:secret@host): keep scheme and host."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}".rstrip("/")


def transfer_entries(
    destinations: Sequence[StorageSpec], existing: Sequence[TransferStatus]
) -> list[TransferStatus]:
    """One entry per destination, the existing ones as they are."""
    by_index = {t.index: t for t in existing}
    return [
        by_index.get(i) or TransferStatus(index=i, destination=destination_name(spec))
        for i, spec in enumerate(destinations)
    ]


def due_transfers(
    entries: Sequence[TransferStatus], running: Collection[int], now: dt.datetime
) -> list[int]:
    """Destinations to start now. One left `Copying` by an operator that died mid-copy is
    started again (a copy completes each object atomically, so a repeat is harmless)."""
    due = []
    for entry in entries:
        if entry.index in running:
            continue
        waiting = entry.next_attempt_at is not None and entry.next_attempt_at > now
        if entry.state is TransferState.COPYING or (
            entry.state is TransferState.PENDING and not waiting
        ):
            due.append(entry.index)
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
