"""Presigned download URLs in the status: when they are due, and the status fields they make.

Pure; `aftercare` presigns (an offline signature: no request to the store).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from tapedeck_bot.contract import Download, Phase, RecordingStatus
from tapedeck_bot.storage import PresignedUrl
from tapedeck_operator.config import DownloadSettings
from tapedeck_operator.webhooks.payloads import primary_composite

__all__ = ["download_fields", "renew_at"]


def renew_at(status: RecordingStatus, settings: DownloadSettings) -> dt.datetime | None:
    """When the URLs must be (re)issued: now if an output has none, else `renewBefore` ahead
    of the first expiry. None once there is nothing to hand out."""
    if status.phase is not Phase.UPLOADED or status.expired or not status.outputs:
        return None
    signed = {d.key for d in status.downloads}
    if any(o.key not in signed for o in status.outputs):
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    first_expiry = min(d.expires_at for d in status.downloads)
    return first_expiry - dt.timedelta(seconds=settings.renew_before)


def download_fields(status: RecordingStatus, urls: Mapping[str, PresignedUrl]) -> dict[str, Any]:
    """`downloads` for every output (salvaged segments too), and RealtimeKit's `downloadUrl`
    and `downloadUrlExpiry` for the composite."""
    downloads = [
        Download(
            key=o.key,
            kind=o.kind,
            user_id=o.user_id,
            bytes=o.bytes,
            salvaged=o.salvaged,
            url=urls[o.key].url,
            expires_at=urls[o.key].expires_at,
        )
        for o in status.outputs
    ]
    composite = primary_composite(status.outputs)
    main = urls.get(composite.key) if composite is not None else None
    return {
        "downloads": [d.to_wire() for d in downloads],
        "downloadUrl": main.url if main else None,
        "downloadUrlExpiry": main.expires_at.isoformat() if main else None,
    }
