"""Follow the bot's own Recording from a thread: every version of it goes to `on_object`.

The watch is resumed from the last resourceVersion; after an error (the API server gone, a
410 for an expired version) the object is read again and the watch restarted, with backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from tapedeck_bot.contract import DesiredState
from tapedeck_bot.kube import RecordingApi, RecordingApiError

__all__ = ["RecordingWatcher", "desired_state"]

log = logging.getLogger("tapedeck_bot.watching")

_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)


def desired_state(obj: dict[str, Any]) -> DesiredState:
    """What the bot should be doing: a Recording being deleted is to be stopped."""
    if obj.get("metadata", {}).get("deletionTimestamp"):
        return DesiredState.STOPPED
    return DesiredState(obj.get("spec", {}).get("state", DesiredState.RECORDING))


class RecordingWatcher:
    def __init__(self, api: RecordingApi, on_object: Callable[[dict[str, Any]], None]) -> None:
        self._api = api
        self._on_object = on_object

    def run(self, stop: threading.Event, first: dict[str, Any] | None = None) -> None:
        """Watch until `stop` is set; `first` is the object already read, if any."""
        failures = 0
        obj = first
        while not stop.is_set():
            try:
                if obj is None:
                    obj = self._api.get()
                    self._on_object(obj)
                version = obj["metadata"]["resourceVersion"]
                for kind, seen in self._api.watch(version):
                    if stop.is_set():
                        return
                    if kind == "ERROR":  # e.g. 410: the version expired; read it again
                        raise RecordingApiError(str(seen.get("message", seen)))
                    if kind in ("ADDED", "MODIFIED"):
                        obj = seen
                        self._on_object(seen)
                    failures = 0
            except RecordingApiError as exc:
                delay = _BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)]
                failures += 1
                log.warning("watch failed; retrying", extra={"error": str(exc), "in_s": delay})
                obj = None
                stop.wait(delay)
