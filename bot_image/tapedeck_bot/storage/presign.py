"""Presigned download URLs, never valid for longer than SigV4 (and R2) allow: 7 days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tapedeck_bot.storage.store import ObjectStore

__all__ = ["MAX_EXPIRY", "PresignedUrl", "clamp_expiry", "presign"]

MAX_EXPIRY = dt.timedelta(days=7)  # 604800 s: servers refuse longer; botocore does not check
_MIN_EXPIRY = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class PresignedUrl:
    url: str
    expires_at: dt.datetime


def clamp_expiry(requested: dt.timedelta) -> dt.timedelta:
    return max(_MIN_EXPIRY, min(requested, MAX_EXPIRY))


def presign(
    store: ObjectStore,
    key: str,
    expires: dt.timedelta = MAX_EXPIRY,
) -> PresignedUrl:
    expiry = clamp_expiry(expires)
    signed_at = dt.datetime.now(dt.UTC).replace(microsecond=0)  # SigV4 signs whole seconds
    return PresignedUrl(store.presign_get(key, expiry), signed_at + expiry)
