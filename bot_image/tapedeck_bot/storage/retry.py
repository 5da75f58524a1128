"""Backoff with jitter for storage requests that fail."""

from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ["backoff_delays"]


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
