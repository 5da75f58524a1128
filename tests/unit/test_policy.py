"""The operator's attempt policy and phase machine, as tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from tapedeck_bot.contract import Phase, RecordingSpec, Transition
from tapedeck_operator.config import BotSettings
from tapedeck_operator.policy import Observed, PodView, Problem, Unusable, backoff_s, next_step
from tests.recordings import recording

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
BOT = BotSettings(max_attempts=3, max_restarts=2, start_timeout_seconds=60)


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _history(*phases: Phase) -> tuple[Transition, ...]:
    return tuple(Transition(phase=p, at=_at(i)) for i, p in enumerate(phases))


def _pod(attempt: int = 1, phase: str = "Running", **extra: object) -> PodView:
    return PodView(name=f"rec-bot-{attempt}", attempt=attempt, phase=phase, created_at=T0, **extra)  # type: ignore[arg-type]


def _observed(**changes: object) -> Observed:
    base = Observed(
        name="rec",
        spec=RecordingSpec.model_validate(recording()["spec"]),
        deleting=False,
        created_at=T0,
        history=_history(Phase.INVOKED),
        attempts=0,
        last_attempt_at=None,
        pods=(),
        now=_at(1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _stopped() -> RecordingSpec:
    return RecordingSpec.model_validate(recording(state="Stopped")["spec"])


def test_a_new_recording_is_invoked_and_gets_its_first_attempt() -> None:
    step = next_step(_observed(history=()), BOT)
    assert [t.phase for t in step.transitions] == [Phase.INVOKED]
    assert step.create_attempt == 1


def test_a_running_pod_is_left_alone() -> None:
    step = next_step(_observed(attempts=1, pods=(_pod(),)), BOT)
    assert step.create_attempt is None
    assert step.transitions == ()


@pytest.mark.parametrize(
    ("since_last_s", "attempts", "expected"),
    [
        (30, 1, 2),  # a pod lost after 30 s is replaced at once
        (2, 1, None),  # one that lived 2 s waits out its 5 s backoff
        (12, 2, 3),
        (8, 2, None),
    ],
)
def test_a_lost_pod_gets_a_new_attempt_after_backoff(
    since_last_s: float, attempts: int, expected: int | None
) -> None:
    lost = _pod(attempts, phase="Failed")
    observed = _observed(
        history=_history(Phase.INVOKED, Phase.RECORDING),
        attempts=attempts,
        last_attempt_at=_at(0),
        pods=(lost,),
        now=_at(since_last_s),
    )
    step = next_step(observed, BOT)
    assert step.create_attempt == expected
    assert step.transitions == ()


def test_no_new_attempt_while_the_lost_pod_is_still_terminating() -> None:
    leaving = _pod(1, deleting=True)
    observed = _observed(
        history=_history(Phase.INVOKED, Phase.RECORDING),
        attempts=1,
        last_attempt_at=_at(0),
        pods=(leaving,),
        now=_at(60),
    )
    assert next_step(observed, BOT).create_attempt is None
    done = replace(observed, pods=(replace(leaving, phase="Succeeded"),))
    assert next_step(done, BOT).create_attempt is None  # still there, still deleting
    assert next_step(replace(observed, pods=()), BOT).create_attempt == 2
    # One stuck on a lost node long past its grace period is gone as far as we care.
    stuck = replace(leaving, gone_by=_at(10))
    assert next_step(replace(observed, pods=(stuck,)), BOT).create_attempt == 2


def test_a_pod_that_cannot_start_is_replaced_after_the_start_timeout() -> None:
    stuck = _pod(phase="Pending", waiting_reason="ImagePullBackOff", message="no such image")
    early = next_step(_observed(attempts=1, pods=(stuck,), now=_at(30)), BOT)
    assert early.problem is not None
    assert early.delete_pods == ()
    late = next_step(_observed(attempts=1, pods=(stuck,), now=_at(61)), BOT)
    assert late.delete_pods == ("rec-bot-1",)
    unscheduled = _pod(phase="Pending")
    assert next_step(_observed(attempts=1, pods=(unscheduled,), now=_at(61)), BOT).delete_pods


def test_attempts_are_bounded_then_errored_with_the_last_message() -> None:
    lost = _pod(3, phase="Failed", message="exit code 1: boom")
    step = next_step(_observed(attempts=3, pods=(lost,), last_attempt_at=T0, now=_at(999)), BOT)
    assert [t.phase for t in step.transitions] == [Phase.ERRORED]
    assert step.transitions[0].reason == "BotFailed"
    assert step.error is not None
    assert "3 bot attempts failed" in step.error
    assert "boom" in step.error


def test_stop_before_start_removes_the_pending_pod_and_ends_cleanly() -> None:
    pending = _pod(phase="Pending")
    step = next_step(_observed(spec=_stopped(), attempts=1, pods=(pending,)), BOT)
    assert step.delete_pods == ("rec-bot-1",)
    assert [(t.phase, t.reason) for t in step.transitions] == [
        (Phase.UPLOADED, "StoppedBeforeStart")
    ]


def test_stop_with_a_running_bot_is_left_to_the_bot() -> None:
    step = next_step(_observed(spec=_stopped(), attempts=1, pods=(_pod(),)), BOT)
    assert step.transitions == ()
    assert step.delete_pods == ()


def test_deleting_a_recorded_recording_without_a_pod_starts_a_finishing_attempt() -> None:
    observed = _observed(
        deleting=True,
        history=_history(Phase.INVOKED, Phase.RECORDING),
        attempts=1,
        last_attempt_at=T0,
        pods=(_pod(phase="Succeeded"),),
        now=_at(60),
    )
    assert next_step(observed, BOT).create_attempt == 2


def test_second_recording_of_a_meeting_is_errored_naming_the_first() -> None:
    step = next_step(_observed(history=(), recorded_elsewhere_by="first"), BOT)
    assert [t.phase for t in step.transitions] == [Phase.INVOKED, Phase.ERRORED]
    assert step.transitions[-1].reason == "AlreadyRecording"
    assert step.error is not None
    assert "'first'" in step.error
    assert "allowMultipleRecordings" in step.error
    assert step.create_attempt is None


def test_missing_secret_degrades_then_errors_after_the_start_timeout() -> None:
    missing = ("Secret 'creds' (spec.storage.secretRef) not found",)
    waiting = next_step(_observed(missing_secrets=missing, now=_at(10)), BOT)
    assert waiting.problem is not None
    assert waiting.problem.reason == "SecretNotFound"
    assert waiting.create_attempt is None
    assert waiting.transitions == ()
    late = next_step(_observed(missing_secrets=missing, now=_at(61)), BOT)
    assert [t.phase for t in late.transitions] == [Phase.ERRORED]
    assert late.error == missing[0]


def test_a_watermark_that_cannot_be_used_errors_before_any_pod_and_one_unavailable_waits() -> None:
    refused = Unusable("spec.composite.watermark.url: refused https://10.0.0.1/l.png", final=True)
    at_once = next_step(_observed(watermark=refused, now=_at(1)), BOT)
    assert [t.phase for t in at_once.transitions] == [Phase.ERRORED]
    assert at_once.transitions[0].reason == "WatermarkUnusable"
    assert at_once.error == refused.message
    assert at_once.create_attempt is None
    slow = Unusable("spec.composite.watermark.url: cannot fetch the image: timed out")
    waiting = next_step(_observed(watermark=slow, now=_at(10)), BOT)
    assert waiting.problem == Problem("WatermarkUnavailable", slow.message)
    assert waiting.create_attempt is None
    late = next_step(_observed(watermark=slow, now=_at(61)), BOT)
    assert [t.phase for t in late.transitions] == [Phase.ERRORED]
    assert late.error == slow.message


def test_a_container_that_cannot_start_is_reported_as_degraded() -> None:
    stuck = _pod(
        phase="Pending",
        waiting_reason="CreateContainerConfigError",
        message="no key",
        scheduled=True,
    )
    step = next_step(_observed(attempts=1, pods=(stuck,)), BOT)
    assert step.problem is not None
    assert step.problem.reason == "CreateContainerConfigError"


def test_a_crash_looping_container_is_replaced_by_a_new_attempt() -> None:
    step = next_step(_observed(attempts=1, pods=(_pod(restarts=3),)), BOT)
    assert step.delete_pods == ("rec-bot-1",)


@pytest.mark.parametrize("phase", [Phase.UPLOADED, Phase.ERRORED])
def test_a_finished_recording_needs_nothing(phase: Phase) -> None:
    observed = _observed(history=_history(Phase.INVOKED, phase), pods=(), attempts=1)
    assert next_step(observed, BOT) == next_step(observed, BOT).__class__()


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n) for n in (0, 1, 2, 3, 10)] == [0, 5, 10, 20, 300]
