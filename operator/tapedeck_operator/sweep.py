"""Retention for Recordings deleted from the cluster: a tombstone when one goes, and a sweep
that deletes its objects when due. The bucket's own lifecycle rule backs this up where the
storage key may set one, so the objects go even if no operator is left by then."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from tapedeck_bot.contract import RecordingSpec, RecordingStatus, StorageSpec
from tapedeck_bot.storage import (
    StorageError,
    delete_recording,
    expire_by_rule,
    recording_prefix,
    remove_expiry_rule,
)
from tapedeck_operator.config import OperatorSettings
from tapedeck_operator.kube import ClusterApi
from tapedeck_operator.manifests import effective_storage
from tapedeck_operator.retention import (
    TOMBSTONE_LABELS,
    TOMBSTONES,
    Tombstone,
    due_tombstones,
    expires_at,
    retention_days,
)
from tapedeck_operator.stores import MissingSecret, opened_storage

__all__ = ["leave_tombstone", "sweep", "sweep_forever"]

log = logging.getLogger("tapedeck_operator.retention")
_DAY = dt.timedelta(days=1)


async def leave_tombstone(
    api: ClusterApi, settings: OperatorSettings, body: Mapping[str, Any], now: dt.datetime
) -> Tombstone | None:
    """Called as a Recording goes: keep what its objects' expiry needs after it."""
    meta = body["metadata"]
    spec = RecordingSpec.model_validate(body["spec"])
    status = RecordingStatus.model_validate(body.get("status") or {})
    storage = effective_storage(spec, settings)
    if storage is None or status.expired:
        return None
    due = expires_at(spec, status, settings.retention) or now + dt.timedelta(
        days=retention_days(spec, settings.retention)
    )
    prefix = recording_prefix(storage.path, meta["uid"])
    rule = None
    if settings.retention.bucket_rules:
        # A rule counts days from each object's creation, and none is older than the
        # Recording: counted from its creation, the rule never deletes before `due`.
        created = dt.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
        days = max(1, math.ceil((due - created) / _DAY))
        rule = await asyncio.to_thread(_set_rule, api, meta["namespace"], storage, prefix, days)
    tombstone = Tombstone(
        namespace=meta["namespace"],
        name=meta["name"],
        storage=storage,
        prefix=prefix,
        due_at=due,
        lifecycle_rule=rule,
    )
    entry: dict[str, str | None] = {
        meta["uid"]: tombstone.model_dump_json(by_alias=True, exclude_none=True)
    }
    await asyncio.to_thread(
        api.merge_config_map, settings.namespace, TOMBSTONES, TOMBSTONE_LABELS, entry
    )
    return tombstone


def _set_rule(
    api: ClusterApi, namespace: str, storage: StorageSpec, prefix: str, days: int
) -> str | None:
    try:
        with opened_storage(api, namespace, storage) as store:
            return expire_by_rule(store, prefix, days)
    except (MissingSecret, ValueError):  # the sweep alone will do
        return None


async def sweep(
    api: ClusterApi, namespace: str, data: Mapping[str, str], now: dt.datetime
) -> list[str]:
    """Delete the due tombstones' objects (and their bucket rules); returns the uids done.
    A tombstone that fails stays for the next sweep. `namespace`: the operator's."""
    due, unreadable = due_tombstones(data, now)
    if unreadable:
        log.warning("not tombstones", extra={"configmap": f"{namespace}/{TOMBSTONES}"})
    done = []
    for uid, tombstone in due:
        try:
            await asyncio.to_thread(_expire, api, tombstone)
        except (StorageError, MissingSecret, ValueError) as exc:
            where = f"{tombstone.namespace}/{tombstone.name}"
            log.warning("retention sweep failed", extra={"recording": where, "error": str(exc)})
            continue
        done.append(uid)
    if done:
        removed: dict[str, str | None] = dict.fromkeys(done)
        await asyncio.to_thread(
            api.merge_config_map, namespace, TOMBSTONES, TOMBSTONE_LABELS, removed
        )
    return done


def _expire(api: ClusterApi, tombstone: Tombstone) -> None:
    with opened_storage(api, tombstone.namespace, tombstone.storage) as store:
        deleted = delete_recording(store, tombstone.prefix)
        if tombstone.lifecycle_rule is not None:
            remove_expiry_rule(store, tombstone.lifecycle_rule)
    where = f"{tombstone.namespace}/{tombstone.name}"
    log.info("expired", extra={"recording": where, "objects": len(deleted)})


async def sweep_forever(
    api: ClusterApi, settings: OperatorSettings, clock: Callable[[], dt.datetime]
) -> None:
    """The operator's background sweep, every `retention.sweepIntervalSeconds`."""
    while True:
        try:
            data = await asyncio.to_thread(api.config_map_data, settings.namespace, TOMBSTONES)
            await sweep(api, settings.namespace, data, clock())
        except Exception:  # the API server away, say: the next round tries again
            log.exception("retention sweep failed")
        await asyncio.sleep(settings.retention.sweep_interval_seconds)
