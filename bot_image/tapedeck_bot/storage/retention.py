"""Delete a recording's objects once its retention has passed (RealtimeKit keeps 7 days)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tapedeck_bot.storage.store import ObjectStore

__all__ = ["RetentionResult", "enforce_retention", "lifecycle_rule"]


@dataclass(frozen=True)
class RetentionResult:
    due_at: dt.datetime
    deleted: tuple[str, ...] = ()  # empty until due


def enforce_retention(
    store: ObjectStore,
    prefix: str,
    finished_at: dt.datetime,
    retention_days: int,
    now: dt.datetime,
) -> RetentionResult:
    """Delete everything under the recording's own `{path}/{recordingId}/` once due; the
    operator's timer calls this and, before then, waits until `due_at`."""
    if not prefix.endswith("/"):
        raise ValueError(f"retention needs a recording prefix ending in '/', got {prefix!r}")
    due_at = finished_at + dt.timedelta(days=retention_days)
    if now < due_at:
        return RetentionResult(due_at)
    for pending in store.list_uploads(prefix):
        store.abort_upload(pending.key, pending.upload_id)
    keys = [o.key for o in store.list_objects(prefix)]
    store.delete(keys)
    return RetentionResult(due_at, tuple(keys))


def lifecycle_rule(prefix: str, days: int) -> dict[str, Any]:
    """A bucket rule doing the same, for buckets where the operator's key may set one (R2 needs
    an admin token for this; stale multipart uploads go after a day as well)."""
    return {
        "ID": f"tapedeck-expire-{days}d",
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
