"""Delete a recording's objects once its retention has passed (RealtimeKit keeps 7 days)."""

from __future__ import annotations

from typing import Any

from tapedeck_bot.storage.s3 import S3Store
from tapedeck_bot.storage.store import ObjectStore, StorageError

__all__ = ["delete_recording", "expire_by_rule", "lifecycle_rule", "remove_expiry_rule"]


def delete_recording(store: ObjectStore, prefix: str) -> tuple[str, ...]:
    """Delete everything under the recording's own `{path}/{recordingId}/`, its unfinished
    uploads too; returns the keys deleted."""
    if not prefix.endswith("/"):
        raise ValueError(f"retention needs a recording prefix ending in '/', got {prefix!r}")
    for pending in store.list_uploads(prefix):
        store.abort_upload(pending.key, pending.upload_id)
    keys = [o.key for o in store.list_objects(prefix)]
    store.delete(keys)
    return tuple(keys)


def _rule_id(prefix: str) -> str:
    """The recording's own rule: named by the last part of `{path}/{recordingId}/`."""
    return "tapedeck-expire-" + prefix.rstrip("/").rsplit("/", 1)[-1]


def lifecycle_rule(prefix: str, days: int) -> dict[str, Any]:
    """A bucket rule doing the same, for buckets where the operator's key may set one (R2 needs
    an admin token for this; stale multipart uploads go after a day as well)."""
    return {
        "ID": _rule_id(prefix),
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def expire_by_rule(store: ObjectStore, prefix: str, days: int) -> str | None:
    """Have the bucket expire the prefix itself, so the objects go even if no operator is left
    to delete them; the rule's ID, or None where the store or the key cannot (Azure has no
    S3 lifecycle; an R2 token without admin rights is refused)."""
    if not isinstance(store, S3Store):
        return None
    rule = lifecycle_rule(prefix, days)
    try:
        store.put_lifecycle_rule(rule)
    except StorageError:
        return None
    return str(rule["ID"])


def remove_expiry_rule(store: ObjectStore, rule_id: str) -> None:
    """Drop the rule once the operator has deleted the objects itself (buckets allow 1000)."""
    if isinstance(store, S3Store):
        store.remove_lifecycle_rule(rule_id)
