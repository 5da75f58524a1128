"""The append-only phase history that the bot and the operator both write.

Two writers append to one list, each with a resourceVersion precondition; on a conflict the
writer re-reads and merges with `merge_history`, so an entry written by the other side, or
written before an outage and still waiting, is never lost or doubled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tapedeck_bot.contract.status import Phase, Transition

__all__ = ["TERMINAL", "current_phase", "merge_history", "status_with_history"]

TERMINAL = frozenset({Phase.UPLOADED, Phase.ERRORED})


def merge_history(stored: Iterable[Transition], pending: Iterable[Transition]) -> list[Transition]:
    """`stored` as it is, followed by the `pending` entries it lacks, in their own order.

    Stored entries are never reordered or dropped (their times come from different hosts'
    clocks), and nothing is appended after a stored terminal entry: a late writer cannot
    reopen a finished recording.
    """
    merged = list(stored)
    if any(entry.phase in TERMINAL for entry in merged):
        return merged
    for entry in pending:
        if entry not in merged:
            merged.append(entry)
        if entry.phase in TERMINAL:
            break
    return merged


def current_phase(history: Iterable[Transition]) -> Phase | None:
    last = None
    for entry in history:
        last = entry.phase
    return last


def status_with_history(
    stored_status: Mapping[str, Any], pending: Iterable[Transition], fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A status patch: `fields`, plus the stored history merged with `pending` and the phase
    it ends in. Send it with the stored object's resourceVersion as a precondition."""
    stored = [Transition.model_validate(e) for e in stored_status.get("history") or []]
    history = merge_history(stored, pending)
    return {
        **fields,
        "history": [t.to_wire() for t in history],
        "phase": str(current_phase(history)),
    }
