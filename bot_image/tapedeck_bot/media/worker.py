"""A pipeline stage on its own thread, which the recorder watches for its end and failure."""

from __future__ import annotations

import logging
import threading

__all__ = ["Worker"]

log = logging.getLogger("tapedeck_bot.media")


class Worker:
    """Runs `work()` on a thread, then `finish()` whatever happened; `done` is set after both.

    A failure is kept in `error` (the recorder stops the recording and reports it) rather
    than raised, as nothing would catch it on the thread.
    """

    def __init__(self, name: str) -> None:
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def work(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Release what `work` holds (close files); runs after a failure too."""

    def _main(self) -> None:
        try:
            self.work()
        except BaseException as exc:
            log.exception("pipeline failed", extra={"pipeline": self._thread.name})
            self.error = exc
        finally:
            self.finish()
            self.done.set()
