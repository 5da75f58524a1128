"""The time source every stage reads, injected so that tests run the pipeline on fake time.

`monotonic()` is the recording's clock (frame arrivals, media time), `time()` the wall clock
(UTC start stamps). Waiting goes through the clock too: a fake clock advances instead of
sleeping, so a unit test of a stage never waits for real.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until `event` is set or `timeout` seconds pass; returns whether it is set."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(0.0, timeout))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
