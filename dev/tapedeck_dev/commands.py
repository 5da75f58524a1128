"""Command lines of the bot's CLI, as tests and benchmarks run it in its own process."""

from __future__ import annotations

import sys

__all__ = ["record_command", "whep_record_command"]


def record_command(url: str, room: int, *extra: str) -> list[str]:
    """`tapedeck-bot record` for a Janus room; `extra` adds outputs and options."""
    return [
        sys.executable,
        "-m",
        "tapedeck_bot.cli",
        "record",
        "--janus",
        url,
        "--room",
        str(room),
        *extra,
    ]


def whep_record_command(endpoints: list[tuple[str, str]], *extra: str) -> list[str]:
    """`tapedeck-bot record` for WHEP endpoints, given as (userId, url) pairs."""
    whep = [arg for user, url in endpoints for arg in ("--whep", f"{user}={url}")]
    return [sys.executable, "-m", "tapedeck_bot.cli", "record", *whep, *extra]
