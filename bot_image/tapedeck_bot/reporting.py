"""The bot's half of the Recording status, written by one thread and coalesced.

Progress (participants, duration, bytes) goes out at most once per `progress_every_s`; each
phase transition goes out at once. History is shared with the operator, so a write that
carries it merges with the stored history under a resourceVersion precondition, and on a
conflict re-reads and merges again. While the API server is away nothing is dropped: the
latest fields and every transition wait here and are written when it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from tapedeck_bot.contract import Transition, status_with_history
from tapedeck_bot.kube import ApiRefused, ApiUnavailable, Conflict, RecordingApi

__all__ = ["StatusReporter"]

log = logging.getLogger("tapedeck_bot.reporting")

_RETRY_S = (0.5, 1.0, 2.0, 4.0, 8.0)
_MAX_CONFLICTS = 10


class StatusReporter:
    """Call `update` and `transition` from any thread; `run` writes from its own."""

    def __init__(
        self,
        api: RecordingApi,
        *,
        progress_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._every = progress_every_s
        self._clock = clock
        self._lock = threading.Condition()
        self._fields: dict[str, Any] = {}  # bot-owned keys not yet written, in wire form
        self._pending: list[Transition] = []  # transitions not yet confirmed stored
        self._urgent = False
        self._last_write = -float("inf")
        self._retry_at = -float("inf")
        self._failures = 0
        self._stored: dict[str, Any] = {}  # the latest object seen
        self.writes = 0  # patches the API server accepted

    # -- producers ----------------------------------------------------------------------------

    def observe(self, obj: dict[str, Any]) -> None:
        """The latest object the watcher saw: its resourceVersion and stored history."""
        with self._lock:
            self._stored = obj

    def update(self, **fields: Any) -> None:
        """Bot-owned status keys (wire names and values), written within `progress_every_s`."""
        with self._lock:
            self._fields.update(fields)
            self._lock.notify()

    def transition(self, entry: Transition, **fields: Any) -> None:
        """A phase change, written at once with `fields`."""
        with self._lock:
            self._pending.append(entry)
            self._fields.update(fields)
            self._urgent = True
            self._lock.notify()

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._fields and not self._pending

    # -- the writer ---------------------------------------------------------------------------

    def due_in(self, now: float) -> float | None:
        """Seconds until the next write is due; None if there is nothing to write."""
        with self._lock:
            if not self._fields and not self._pending:
                return None
            due = self._retry_at if self._failures else self._last_write + self._every
            if self._urgent and not self._failures:
                due = now
            return max(0.0, due - now)

    def step(self, now: float) -> bool:
        """Write what is due at `now`; True if a patch was accepted."""
        wait = self.due_in(now)
        if wait is None or wait > 0:
            return False
        with self._lock:
            fields, pending = dict(self._fields), list(self._pending)
            stored = self._stored
        try:
            written = self._write(fields, pending, stored)
        except ApiUnavailable as exc:
            with self._lock:
                self._failures += 1
                delay = _RETRY_S[min(self._failures, len(_RETRY_S)) - 1]
                self._retry_at = now + delay
            log.warning("status write failed; retrying", extra={"error": str(exc), "in_s": delay})
            return False
        with self._lock:
            self._stored = written
            for key, value in fields.items():
                if self._fields.get(key) is value:
                    del self._fields[key]
            self._pending = [t for t in self._pending if t not in pending]
            self._urgent = bool(self._pending)
            self._last_write, self._failures = now, 0
            self.writes += 1
        return True

    def _write(
        self, fields: dict[str, Any], pending: list[Transition], stored: dict[str, Any]
    ) -> dict[str, Any]:
        if not pending:
            return self._api.patch_status(fields)
        for _ in range(_MAX_CONFLICTS):
            if not stored:
                stored = self._api.get()
            status = status_with_history(stored.get("status") or {}, pending, fields)
            try:
                return self._api.patch_status(status, stored["metadata"]["resourceVersion"])
            except Conflict:
                stored = {}  # someone else wrote: re-read and merge again
        raise ApiUnavailable(f"{_MAX_CONFLICTS} conflicts in a row writing the history")

    def _refused(self, exc: ApiRefused) -> None:
        """A 4xx: first drop the fields (one may break the schema) and keep the transitions;
        if those are refused on their own too (the Recording is gone), drop everything."""
        log.error("status write refused", extra={"error": str(exc)})
        with self._lock:
            if self._fields and self._pending:
                self._fields.clear()
            else:
                self._fields.clear()
                self._pending.clear()

    def run(self, stop: threading.Event) -> None:
        """Write until `stop` is set and nothing is left (or it is set twice: see `abandon`)."""
        while True:
            if stop.is_set():  # the pod is finishing: nothing waits for the next interval
                with self._lock:
                    self._urgent = True
            now = self._clock()
            try:
                self.step(now)
            except ApiRefused as exc:
                self._refused(exc)
            except Exception:  # the writer must outlive any surprise; the recording goes on
                log.exception("status write failed")
                with self._lock:
                    self._failures += 1
                    self._retry_at = now + _RETRY_S[-1]
            wait = self.due_in(self._clock())
            if stop.is_set() and wait is None:
                return
            with self._lock:
                self._lock.wait(timeout=min(wait if wait is not None else 1.0, 1.0))
