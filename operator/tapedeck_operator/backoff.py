"""Retry delays with exponential backoff and jitter, for webhook deliveries and transfers."""

from __future__ import annotations

__all__ = ["backoff_delay"]


def backoff_delay(attempts: int, *, initial: float, cap: float, jitter: float) -> float:
    """Seconds before the try after `attempts` failed ones: initial, 2x, 4x ... up to `cap`,
    each drawn from the upper half of its window (`jitter` in [0, 1)) so that endpoints that
    failed together are not retried together."""
    doublings = min(max(attempts - 1, 0), 64)  # a day of retries must not overflow a float
    window = min(initial * 2.0**doublings, cap)
    return window * (0.5 + 0.5 * jitter)
