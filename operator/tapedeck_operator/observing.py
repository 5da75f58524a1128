"""Read API objects into the operator's views: pure parsing, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from tapedeck_bot.contract import TERMINAL, Phase, RecordingSpec, Transition, current_phase
from tapedeck_operator.manifests import ATTEMPT_LABEL, RECORDING_UID_LABEL
from tapedeck_operator.policy import Observed, PodView

__all__ = [
    "active_meeting_key",
    "missing_secrets",
    "observe",
    "parse_time",
    "phase_of",
    "pod_view",
    "recording_uid_of",
]


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def recording_uid_of(pod: Mapping[str, Any]) -> str | None:
    labels: Mapping[str, str] = pod.get("metadata", {}).get("labels") or {}
    return labels.get(RECORDING_UID_LABEL)


def _message(status: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(waiting reason, a message): why the bot waits, or how it last ended."""
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        last = (container.get("lastState") or {}).get("terminated")
        if waiting := state.get("waiting"):
            return waiting.get("reason"), waiting.get("message") or waiting.get("reason")
        if terminated := state.get("terminated") or last:
            text = terminated.get("message") or terminated.get("reason") or ""
            return None, f"exit code {terminated.get('exitCode')}: {text.strip()[-500:]}"
    return None, status.get("message")


def pod_view(pod: Mapping[str, Any]) -> PodView:
    meta, status = pod["metadata"], pod.get("status") or {}
    labels = meta.get("labels") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    reason, message = _message(status)
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    created = parse_time(meta.get("creationTimestamp")) or dt.datetime.now(dt.UTC)
    return PodView(
        name=meta["name"],
        attempt=int(labels.get(ATTEMPT_LABEL, "0")),
        phase=status.get("phase") or "Pending",
        created_at=created,
        deleting=bool(meta.get("deletionTimestamp")),
        gone_by=parse_time(meta.get("deletionTimestamp")),
        scheduled=bool(pod.get("spec", {}).get("nodeName"))
        or conditions.get("PodScheduled") == "True",
        restarts=restarts,
        waiting_reason=reason,
        message=message,
    )


def _history(status: Mapping[str, Any]) -> tuple[Transition, ...]:
    return tuple(Transition.model_validate(e) for e in status.get("history") or [])


def phase_of(body: Mapping[str, Any]) -> Phase | None:
    """The Recording's phase: the last entry of its history."""
    return current_phase(_history(body.get("status") or {}))


def active_meeting_key(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, meeting id) of a Recording that holds its meeting, for AlreadyRecording."""
    spec = body.get("spec") or {}
    if spec.get("allowMultipleRecordings") or phase_of(body) in TERMINAL:
        return None
    meeting_id = (spec.get("meeting") or {}).get("id")
    return (body["metadata"]["namespace"], meeting_id) if meeting_id else None


def missing_secrets(
    named: Mapping[str, str], keys: Mapping[str, set[str] | None], needed: Mapping[str, set[str]]
) -> tuple[str, ...]:
    """Messages for each named Secret that is absent or lacks a key the bot needs.

    `named`: Secret -> the field naming it; `keys`: Secret -> its data keys (None: absent);
    `needed`: Secret -> keys the pod reads from it.
    """
    problems = []
    for secret, field in named.items():
        present = keys.get(secret)
        if present is None:
            problems.append(
                f"Secret {secret!r} ({field}) not found: create it in the Recording's namespace"
            )
        elif lacking := sorted(needed.get(secret, set()) - present):
            problems.append(f"Secret {secret!r} ({field}) has no key {', '.join(lacking)}")
    return tuple(problems)


def observe(
    body: Mapping[str, Any],
    *,
    pods: Iterable[PodView],
    now: dt.datetime,
    missing: tuple[str, ...] = (),
    recorded_elsewhere_by: str | None = None,
) -> Observed:
    meta, status = body["metadata"], body.get("status") or {}
    pod_list = tuple(sorted(pods, key=lambda p: p.attempt))
    attempts = max([status.get("attempts") or 0, *(p.attempt for p in pod_list)])
    return Observed(
        name=meta["name"],
        spec=RecordingSpec.model_validate(body["spec"]),
        deleting=bool(meta.get("deletionTimestamp")),
        created_at=parse_time(meta.get("creationTimestamp")) or now,
        history=_history(status),
        attempts=attempts,
        last_attempt_at=parse_time(status.get("lastAttemptAt")),
        pods=pod_list,
        now=now,
        missing_secrets=missing,
        recorded_elsewhere_by=recorded_elsewhere_by,
    )
