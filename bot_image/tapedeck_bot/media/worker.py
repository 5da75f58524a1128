"""A pipeline stage on its own thread, which the recorder watches for its end and failure."""

from __future__ import annotations

import logging
import threading

from tapedeck_bot.clock import Clock

__all__ = ["Stage"]

log = logging.getLogger("tapedeck_bot.media")


class Stage:
    """Runs `step(now)` on a thread until it returns None, waiting as long as each step
    asks in between; then `finish()`, whatever happened. `done` is set after both.

    A test drives `step` itself, on fake time, with no thread. A failure is kept in `error`
    (the recorder stops the recording and reports it) rather than raised, as nothing would
    catch it on the thread.
    """

    def __init__(self, name: str, clock: Clock) -> None:
        self.name, self.clock = name, clock
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Step now rather than when the last step asked (the control state changed)."""
        self._wake.set()

    def step(self, now: float) -> float | None:
        """Do what is due at `now`; returns the seconds until the next step, None when done."""
        raise NotImplementedError

    def finish(self) -> None:
        """Release what the steps hold (close files); runs after a failure too."""

    def _main(self) -> None:
        try:
            while (delay := self.step(self.clock.monotonic())) is not None:
                self.clock.wait(self._wake, delay)
                self._wake.clear()
        except BaseException as exc:
            log.exception("pipeline stage failed", extra={"stage": self.name})
            self.error = exc
        finally:
            try:
                self.finish()
            except BaseException as exc:  # e.g. a full disk when closing a file
                log.exception("pipeline stage failed to finish", extra={"stage": self.name})
                self.error = self.error or exc
            self.done.set()
