"""Recording conditions from phase, pod and problems."""

from __future__ import annotations

import datetime as dt

import pytest

from tapedeck_bot.contract import Phase
from tapedeck_operator.conditions import desired_conditions, merge_conditions
from tapedeck_operator.policy import PodView, Problem

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
POD = PodView(name="rec-bot-1", attempt=1, phase="Running", created_at=T0, scheduled=True)


def _table(**kwargs: object) -> dict[str, tuple[str, str]]:
    args: dict[str, object] = {
        "phase": None,
        "pod": None,
        "problem": None,
        "degraded": None,
        "error": None,
        "generation": 3,
        "now": T0,
        **kwargs,
    }
    conditions = desired_conditions(**args)  # type: ignore[arg-type]
    assert {c.observed_generation for c in conditions} == {3}
    return {c.type: (c.status, c.reason) for c in conditions}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"phase": Phase.INVOKED},
            {
                "BotScheduled": ("False", "NoPod"),
                "Recording": ("False", "Invoked"),
                "Degraded": ("False", "AsExpected"),
                "Ready": ("False", "Invoked"),
                "Reconciling": ("True", "Invoked"),
                "Stalled": ("False", "Invoked"),
            },
        ),
        (
            {"phase": Phase.RECORDING, "pod": POD},
            {
                "BotScheduled": ("True", "Scheduled"),
                "Recording": ("True", "Recording"),
                "Degraded": ("False", "AsExpected"),
                "Ready": ("False", "Recording"),
                "Reconciling": ("True", "Recording"),
                "Stalled": ("False", "Recording"),
            },
        ),
        (
            {"phase": Phase.PAUSED, "pod": POD, "degraded": "spool holds 3 GiB"},
            {
                "BotScheduled": ("True", "Scheduled"),
                "Recording": ("False", "Paused"),
                "Degraded": ("True", "UploadsBehind"),
                "Ready": ("False", "Paused"),
                "Reconciling": ("True", "Paused"),
                "Stalled": ("False", "Paused"),
            },
        ),
        (
            {"phase": Phase.UPLOADED, "pod": POD},
            {
                "BotScheduled": ("True", "Scheduled"),
                "Recording": ("False", "Uploaded"),
                "Degraded": ("False", "AsExpected"),
                "Ready": ("True", "Uploaded"),
                "Reconciling": ("False", "Uploaded"),
                "Stalled": ("False", "Uploaded"),
            },
        ),
        (
            {"phase": Phase.INVOKED, "problem": Problem("SecretNotFound", "no Secret")},
            {
                "BotScheduled": ("False", "NoPod"),
                "Recording": ("False", "Invoked"),
                "Degraded": ("True", "SecretNotFound"),
                "Ready": ("False", "Invoked"),
                "Reconciling": ("True", "Invoked"),
                "Stalled": ("False", "Invoked"),
            },
        ),
        (
            {"phase": Phase.ERRORED, "error": "room 7 does not exist"},
            {
                "BotScheduled": ("False", "NoPod"),
                "Recording": ("False", "Errored"),
                "Degraded": ("False", "AsExpected"),
                "Ready": ("False", "Errored"),
                "Reconciling": ("False", "Errored"),
                "Stalled": ("True", "Errored"),
            },
        ),
    ],
)
def test_conditions_follow_phase_pod_and_problems(
    kwargs: dict[str, object], expected: dict[str, tuple[str, str]]
) -> None:
    assert _table(**kwargs) == expected


def test_transition_time_moves_only_when_status_flips() -> None:
    later = T0 + dt.timedelta(minutes=5)
    before = desired_conditions(
        phase=Phase.RECORDING,
        pod=POD,
        problem=None,
        degraded=None,
        error=None,
        generation=1,
        now=T0,
    )
    after = merge_conditions(
        before,
        desired_conditions(
            phase=Phase.UPLOADED,
            pod=POD,
            problem=None,
            degraded=None,
            error=None,
            generation=1,
            now=later,
        ),
    )
    times = {c.type: c.last_transition_time for c in after}
    assert times["BotScheduled"] == T0  # still True
    assert times["Degraded"] == T0  # still False
    assert times["Recording"] == later  # True -> False
    assert times["Ready"] == later  # False -> True
