"""Run every benchmark and record its figures (medians) with the date and machine."""

from __future__ import annotations

from bench import control_plane
from bench.record import record


def main() -> None:
    record(control_plane.run(), "dev control plane")


if __name__ == "__main__":
    main()
