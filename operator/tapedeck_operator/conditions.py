"""The Recording's conditions, as pure functions of its phase, its pod and its problems.

`BotScheduled`, `Recording`, `Degraded` and `Ready` (True once UPLOADED, so that
`kubectl wait --for=condition=Ready` works), each with observedGeneration. `Reconciling`
(True until UPLOADED or ERRORED) and `Stalled` (True once ERRORED) are kstatus' abnormal-true
pair, which is how Flux and kpt (kstatus) tell InProgress, Current and Failed apart: without
them kstatus reads a False `Ready` as InProgress forever, even for an ERRORED recording.
`lastTransitionTime` moves only when a condition's status flips.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from tapedeck_bot.contract import Condition, Phase
from tapedeck_operator.policy import PodView, Problem

__all__ = ["desired_conditions", "merge_conditions"]

_READY_REASON = {
    None: "Pending",
    Phase.INVOKED: "Invoked",
    Phase.RECORDING: "Recording",
    Phase.PAUSED: "Paused",
    Phase.UPLOADING: "Uploading",
    Phase.UPLOADED: "Uploaded",
    Phase.ERRORED: "Errored",
}

_RECONCILING_MESSAGE = {
    None: "waiting for the operator",
    Phase.INVOKED: "the bot is starting",
    Phase.RECORDING: "the bot is recording the meeting",
    Phase.PAUSED: "the recording is paused",
    Phase.UPLOADING: "the bot is uploading the last parts",
}


def _condition(
    kind: str, ok: bool, reason: str, message: str, generation: int, now: dt.datetime
) -> Condition:
    return Condition(
        type=kind,
        status="True" if ok else "False",
        observed_generation=generation,
        last_transition_time=now,
        reason=reason,
        message=message[:32768],
    )


def desired_conditions(
    *,
    phase: Phase | None,
    pod: PodView | None,
    problem: Problem | None,
    degraded: str | None,
    error: str | None,
    generation: int,
    now: dt.datetime,
) -> list[Condition]:
    """`pod`: the latest attempt's pod; `degraded`: the bot's own report (uploads behind)."""
    scheduled = pod is not None and pod.scheduled
    if pod is None:
        sched_reason, sched_message = "NoPod", "no bot pod exists"
    elif scheduled:
        sched_reason, sched_message = "Scheduled", f"{pod.name} is bound to a node"
    else:
        sched_reason, sched_message = "Pending", f"{pod.name} waits for a node"
    recording = phase is Phase.RECORDING
    if problem is not None:
        degraded_condition = (True, problem.reason, problem.message)
    elif degraded:
        degraded_condition = (True, "UploadsBehind", degraded)
    else:
        degraded_condition = (False, "AsExpected", "")
    ready = phase is Phase.UPLOADED
    ready_message = error or ("every output is uploaded" if ready else "")
    stalled = phase is Phase.ERRORED
    reconciling = not (ready or stalled)
    return [
        _condition("BotScheduled", scheduled, sched_reason, sched_message, generation, now),
        _condition(
            "Recording",
            recording,
            _READY_REASON[phase],
            "the bot is recording the meeting" if recording else "",
            generation,
            now,
        ),
        _condition("Degraded", *degraded_condition, generation, now),
        _condition("Ready", ready, _READY_REASON[phase], ready_message, generation, now),
        _condition(
            "Reconciling",
            reconciling,
            _READY_REASON[phase],
            _RECONCILING_MESSAGE.get(phase, "") if reconciling else "",
            generation,
            now,
        ),
        _condition(
            "Stalled",
            stalled,
            _READY_REASON[phase],
            (error or "the recording failed") if stalled else "",
            generation,
            now,
        ),
    ]


def merge_conditions(
    existing: Iterable[Condition], desired: Iterable[Condition]
) -> list[Condition]:
    """`desired`, keeping each condition's lastTransitionTime unless its status flipped."""
    before = {c.type: c for c in existing}
    merged = []
    for condition in desired:
        old = before.get(condition.type)
        if old is not None and old.status == condition.status:
            condition = condition.model_copy(
                update={"last_transition_time": old.last_transition_time}
            )
        merged.append(condition)
    return merged
