"""Retrying storage requests: backoff with jitter, outages waited out, refusals given up."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from tapedeck_bot.clock import SYSTEM_CLOCK, Clock
from tapedeck_bot.storage.store import StorageError

__all__ = ["backoff_delays", "call_with_retries"]

log = logging.getLogger("tapedeck_bot.storage")

T = TypeVar("T")


def backoff_delays(
    base_s: float = 0.5, cap_s: float = 20.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Endless delays doubling from `base_s` to `cap_s`, each drawn from its upper half so
    that many parts retrying at once (one per track file) spread out instead of in lockstep."""
    rng = rng or random.Random()
    ceiling = base_s
    while True:
        yield rng.uniform(ceiling / 2, ceiling)
        ceiling = min(cap_s, ceiling * 2)


def call_with_retries(
    request: Callable[[], T],
    *,
    what: str,
    stop: threading.Event,
    max_refusals: int,
    max_failures: int | None = None,
    on_error: Callable[[StorageError], None] = lambda exc: None,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Run `request` until it succeeds. Outages (retryable errors) are retried up to
    `max_failures` times (None: for as long as it takes); a refusal (bad key, no bucket) is
    tried `max_refusals` more times, in case someone fixes it. Setting `stop` ends it all."""
    delays = backoff_delays()
    refusals = failures = 0
    while True:
        try:
            return request()
        except StorageError as exc:
            on_error(exc)
            failures += 1
            refusals += not exc.retryable
            if refusals > max_refusals or (max_failures is not None and failures > max_failures):
                raise
            delay = next(delays)
            log.warning(
                "storage request failed; retrying",
                extra={"request": what, "error": str(exc), "retry_in_s": round(delay, 2)},
            )
            if clock.wait(stop, delay):
                raise
