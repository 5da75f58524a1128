"""When a recording's objects expire, and the tombstones that keep a deleted Recording's
expiry: the ConfigMap `tapedeck-retention` in the operator's namespace, one key per Recording
uid. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pydantic import AwareDatetime, Field, ValidationError

from tapedeck_bot.contract import TERMINAL, RecordingSpec, RecordingStatus, StorageSpec
from tapedeck_bot.contract.base import CamelModel
from tapedeck_operator.config import RetentionSettings
from tapedeck_operator.manifests import MANAGED_BY

__all__ = [
    "TOMBSTONES",
    "TOMBSTONE_LABELS",
    "Tombstone",
    "due_tombstones",
    "expires_at",
    "retention_days",
]

TOMBSTONES = "tapedeck-retention"
TOMBSTONE_LABELS = {**MANAGED_BY, "tapedeck.dev/role": "retention"}


class Tombstone(CamelModel):
    """What the sweep needs to delete a deleted Recording's objects on time."""

    namespace: str  # the Recording's: its storage Secret is there
    name: str
    storage: StorageSpec
    prefix: str
    due_at: AwareDatetime  # a naive time cannot be compared: such a tombstone is unreadable
    lifecycle_rule: str | None = Field(
        default=None, description="the bucket rule set as a backstop, removed once done"
    )


def retention_days(spec: RecordingSpec, settings: RetentionSettings) -> int:
    return spec.retention_days or settings.days


def expires_at(
    spec: RecordingSpec, status: RecordingStatus, settings: RetentionSettings
) -> dt.datetime | None:
    """`retentionDays` after the recording ended (UPLOADED or ERRORED: a failed one may have
    left segments); None while it goes on."""
    if not status.history or status.history[-1].phase not in TERMINAL:
        return None
    return status.history[-1].at + dt.timedelta(days=retention_days(spec, settings))


def due_tombstones(
    data: Mapping[str, str], now: dt.datetime
) -> tuple[list[tuple[str, Tombstone]], list[str]]:
    """(uid, tombstone) pairs that are due, and the keys that are not tombstones (left alone,
    but reported)."""
    due, unreadable = [], []
    for uid, text in data.items():
        try:
            tombstone = Tombstone.model_validate_json(text)
        except ValidationError:
            unreadable.append(uid)
            continue
        if tombstone.due_at <= now:
            due.append((uid, tombstone))
    return due, unreadable
