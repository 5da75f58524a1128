"""What the operator does next for a Recording: a pure function of what it observed.

`next_step(observed, settings)` returns a `Step`: a transition to record, pods to create or
delete, a problem to report as Degraded, or when to look again. The bot owns the phases of a
running recording (RECORDING, PAUSED, UPLOADING, UPLOADED); the operator adds INVOKED at
creation, and ends a Recording that no bot can finish (ERRORED, or UPLOADED when it was
stopped before anything was recorded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from tapedeck_bot.contract import TERMINAL, DesiredState, Phase, RecordingSpec, Transition
from tapedeck_operator.config import BotSettings

__all__ = ["Observed", "PodView", "Problem", "Step", "Unusable", "backoff_s", "next_step"]

# Waiting reasons of a container that will not start without someone fixing something.
_STUCK = frozenset(
    {
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
    }
)


@dataclass(frozen=True)
class PodView:
    """A bot pod as the operator sees it."""

    name: str
    attempt: int
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    created_at: dt.datetime
    deleting: bool = False
    gone_by: dt.datetime | None = None  # a deleted pod's deletionTimestamp: grace included
    scheduled: bool = False
    restarts: int = 0
    waiting_reason: str | None = None
    message: str | None = None  # why it waits, or the last termination message

    @property
    def active(self) -> bool:
        return not self.deleting and self.phase in ("Pending", "Running")


@dataclass(frozen=True)
class Unusable:
    """Something a bot pod needs that is not ready; `final` when waiting cannot help."""

    message: str  # names the field and the fix
    final: bool = False


@dataclass(frozen=True)
class Observed:
    """Everything `next_step` decides on, gathered by the handlers."""

    name: str
    spec: RecordingSpec
    deleting: bool
    created_at: dt.datetime
    history: tuple[Transition, ...]
    attempts: int
    last_attempt_at: dt.datetime | None
    pods: tuple[PodView, ...]
    now: dt.datetime
    missing_secrets: tuple[str, ...] = ()  # messages that name the Secret and the field
    watermark: Unusable | None = None  # composite.watermark's image, when it is not ready
    recorded_elsewhere_by: str | None = None  # the active Recording of the same meeting

    @property
    def phase(self) -> Phase | None:
        return self.history[-1].phase if self.history else None

    @property
    def desired(self) -> DesiredState:
        return DesiredState.STOPPED if self.deleting else self.spec.state

    @property
    def has_recorded(self) -> bool:
        return any(t.phase is Phase.RECORDING for t in self.history)


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


@dataclass(frozen=True)
class Step:
    transitions: tuple[Transition, ...] = ()
    error: str | None = None  # with an ERRORED transition: status.error
    create_attempt: int | None = None
    delete_pods: tuple[str, ...] = ()
    problem: Problem | None = None  # reported as Degraded
    events: tuple[tuple[str, str], ...] = field(default=())  # (reason, message), Normal


def backoff_s(attempts: int) -> float:
    """Seconds after attempt `attempts` was created before the next may start: 5, 10, 20...
    A pod that lived longer than that is replaced at once; one that keeps dying waits."""
    return 0.0 if attempts == 0 else min(5.0 * 2 ** (attempts - 1), 300.0)


def _transition(observed: Observed, phase: Phase, reason: str) -> Transition:
    return Transition(phase=phase, at=observed.now, reason=reason[:256])


def _errored(observed: Observed, reason: str, message: str) -> Step:
    return Step(transitions=(_transition(observed, Phase.ERRORED, reason),), error=message)


def next_step(observed: Observed, bot: BotSettings) -> Step:
    if observed.phase in TERMINAL:
        return Step()
    invoked: tuple[Transition, ...] = ()
    if observed.phase is None:
        invoked = (_transition(observed, Phase.INVOKED, "Recording created"),)
    step = _decide(observed, bot)
    return replace(step, transitions=invoked + step.transitions)


def _decide(observed: Observed, bot: BotSettings) -> Step:
    active = [p for p in observed.pods if p.active]
    if observed.recorded_elsewhere_by and not observed.has_recorded and not active:
        message = (
            f"meeting {observed.spec.meeting.id!r} is already being recorded by Recording "
            f"{observed.recorded_elsewhere_by!r}; set spec.allowMultipleRecordings: true to "
            "record it more than once"
        )
        return _errored(observed, "AlreadyRecording", message)
    if observed.desired is DesiredState.STOPPED and not observed.has_recorded:
        return _stop_before_start(observed, active)
    if active:
        return _watch_pod(active[-1], bot, observed.now)
    if any(_terminating(p, observed.now) for p in observed.pods):
        # A pod being deleted is still finishing its uploads: two bots of one Recording must
        # never run at once, or the next would salvage uploads the last is completing.
        return Step()
    return _next_attempt(observed, bot)


# A pod still there this long after its grace period is stuck on a lost node: go on without it.
_TERMINATING_SLACK = dt.timedelta(seconds=30)


def _terminating(pod: PodView, now: dt.datetime) -> bool:
    return pod.deleting and (pod.gone_by is None or now < pod.gone_by + _TERMINATING_SLACK)


def _stop_before_start(observed: Observed, active: list[PodView]) -> Step:
    """Nothing was recorded: a pending pod is removed and the Recording ends cleanly. A
    running one is left to notice the stop itself (it may be joining right now)."""
    if any(p.phase == "Running" for p in active):
        return Step()
    return Step(
        transitions=(_transition(observed, Phase.UPLOADED, "StoppedBeforeStart"),),
        delete_pods=tuple(p.name for p in active),
        events=(("StoppedBeforeStart", "stopped before the bot started: nothing recorded"),),
    )


def _watch_pod(pod: PodView, bot: BotSettings, now: dt.datetime) -> Step:
    if pod.restarts > bot.max_restarts:
        return Step(
            delete_pods=(pod.name,),
            events=(("BotRestarting", f"{pod.name} restarted {pod.restarts} times; replacing"),),
        )
    stuck = pod.waiting_reason in _STUCK or (pod.phase == "Pending" and not pod.scheduled)
    if not stuck:
        return Step()
    why = f"{pod.name}: {pod.message or pod.waiting_reason or 'waits for a node'}"
    if (now - pod.created_at).total_seconds() >= bot.start_timeout_seconds:
        # Never hang: a pod that cannot start counts as a failed attempt.
        return Step(delete_pods=(pod.name,), events=(("BotStuck", f"{why}; replacing"),))
    return Step(problem=Problem(pod.waiting_reason or "Unschedulable", why))


def _wait_or_fail(observed: Observed, bot: BotSettings, reason: str, message: str) -> Step:
    """Report what the pod lacks while someone may still fix it; ERRORED after
    bot.startTimeoutSeconds: never hang."""
    since = max(observed.created_at, observed.last_attempt_at or observed.created_at)
    if (observed.now - since).total_seconds() >= bot.start_timeout_seconds:
        return _errored(observed, reason, message)
    return Step(problem=Problem(reason, message))


def _next_attempt(observed: Observed, bot: BotSettings) -> Step:
    if observed.attempts >= bot.max_attempts:
        last = max(observed.pods, key=lambda p: p.attempt, default=None)
        why = f"; the last one ended: {last.message}" if last and last.message else ""
        return _errored(
            observed,
            "BotFailed",
            f"{observed.attempts} bot attempts failed (bot.maxAttempts){why}",
        )
    if observed.missing_secrets:
        return _wait_or_fail(observed, bot, "SecretNotFound", "; ".join(observed.missing_secrets))
    if observed.watermark is not None:
        if observed.watermark.final:
            return _errored(observed, "WatermarkUnusable", observed.watermark.message)
        return _wait_or_fail(observed, bot, "WatermarkUnavailable", observed.watermark.message)
    if observed.last_attempt_at is not None:
        ready_at = observed.last_attempt_at + dt.timedelta(seconds=backoff_s(observed.attempts))
        if observed.now < ready_at:
            return Step()
    attempt = observed.attempts + 1
    verb = "starting" if attempt == 1 else "restarting after a lost pod:"
    return Step(create_attempt=attempt, events=(("BotStarting", f"{verb} attempt {attempt}"),))
