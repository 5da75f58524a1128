"""Reconcile one Recording: gather what is observed, ask the policy, carry out its step.

The decisions are in `policy` and `conditions` (pure); this module does the I/O around them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tapedeck_bot.contract import (
    TERMINAL,
    Condition,
    DesiredState,
    Phase,
    RecordingSpec,
    Transition,
    status_with_history,
)
from tapedeck_operator.conditions import desired_conditions, merge_conditions
from tapedeck_operator.config import OperatorSettings
from tapedeck_operator.kube import ClusterApi, Conflict
from tapedeck_operator.manifests import (
    Owner,
    bot_pod,
    bot_role,
    bot_role_binding,
    bot_service_account,
    effective_storage,
    named_secrets,
    pod_name,
    storage_secret_keys,
)
from tapedeck_operator.metrics import OperatorMetrics
from tapedeck_operator.observing import missing_secrets, observe
from tapedeck_operator.policy import Observed, PodView, Step, next_step
from tapedeck_operator.watermarks import prepare_watermark
from tapedeck_operator.webhooks.egress import Egress

__all__ = ["Context", "Rival", "reconcile"]

log = logging.getLogger("tapedeck_operator.reconcile")


@dataclass(frozen=True)
class Rival:
    """An active Recording of the same meeting, from the operator's index."""

    created_at: str
    name: str
    uid: str


@dataclass
class Context:
    """What every handler shares: the client, the settings, the egress (watermark images),
    the metrics, and a lock per Recording, so that its timer and its create or delete handler
    take turns."""

    api: ClusterApi
    settings: OperatorSettings
    egress: Egress
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)


def _needed_keys(spec: RecordingSpec, settings: OperatorSettings) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {}
    storage = effective_storage(spec, settings)
    if storage is not None:
        needed[storage.secret_ref.name] = set(storage_secret_keys(storage.type))
    refs = [spec.meeting.janus.pin_secret_ref] if spec.meeting.janus else []
    refs += [e.token_secret_ref for e in spec.meeting.whep.endpoints] if spec.meeting.whep else []
    for ref in refs:
        if ref is not None:
            needed.setdefault(ref.name, set()).add(ref.key)
    return needed


async def _missing(ctx: Context, namespace: str, spec: RecordingSpec) -> tuple[str, ...]:
    named = named_secrets(spec, ctx.settings)
    secrets = {
        name: await asyncio.to_thread(ctx.api.read_secret, namespace, name) for name in named
    }
    keys = {name: set(data) if data is not None else None for name, data in secrets.items()}
    return missing_secrets(named, keys, _needed_keys(spec, ctx.settings))


def _rival(own_uid: str, rivals: Iterable[Rival]) -> str | None:
    first = min(rivals, key=lambda r: (r.created_at, r.name), default=None)
    return first.name if first is not None and first.uid != own_uid else None


async def _start_attempt(ctx: Context, owner: Owner, spec: RecordingSpec, attempt: int) -> None:
    secrets = sorted(named_secrets(spec, ctx.settings))
    for obj in (
        bot_service_account(owner),
        bot_role(owner, secrets),
        bot_role_binding(owner),
        bot_pod(owner, spec, ctx.settings, attempt),
    ):
        await asyncio.to_thread(ctx.api.create, obj)
    ctx.metrics.attempts.inc()


def _phase_after(observed: Observed, step: Step) -> Phase | None:
    return step.transitions[-1].phase if step.transitions else observed.phase


def _operator_fields(
    body: Mapping[str, Any], observed: Observed, step: Step, created: PodView | None
) -> dict[str, Any]:
    status = body.get("status") or {}
    phase = _phase_after(observed, step)
    pods = [*observed.pods, *([created] if created else [])]
    latest = max(pods, key=lambda p: p.attempt, default=None)
    generation = int(body["metadata"].get("generation") or 1)
    existing = [Condition.model_validate(c) for c in status.get("conditions") or []]
    conditions = merge_conditions(
        existing,
        desired_conditions(
            phase=phase,
            pod=latest,
            problem=step.problem,
            degraded=status.get("degraded"),
            error=step.error or status.get("error"),
            generation=generation,
            now=observed.now,
        ),
    )
    fields: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [c.to_wire() for c in conditions],
        "attempts": max(observed.attempts, created.attempt if created else 0),
    }
    if latest is not None:
        fields["botPod"] = latest.name
    if created is not None:
        fields["lastAttemptAt"] = observed.now.isoformat()
    if step.error:
        fields["error"] = step.error
    fields["announcedTransitions"] = len(observed.history) + len(step.transitions)
    return fields


def _changed(current: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    return any(current.get(k) != v for k, v in fields.items())


async def _write_status(
    ctx: Context, body: Mapping[str, Any], step: Step, fields: dict[str, Any]
) -> None:
    """Write the operator's keys (and its transitions, merged into the stored history) only if
    the Recording is as observed: a decision made on a stale view raises `Conflict`, and the
    next pass decides again on fresh state rather than merging a stale decision."""
    meta = body["metadata"]
    status = body.get("status") or {}
    if step.transitions:
        fields = status_with_history(status, step.transitions, fields)
    elif not _changed(status, fields):
        return
    await asyncio.to_thread(
        ctx.api.patch_recording_status,
        meta["namespace"],
        meta["name"],
        fields,
        meta["resourceVersion"],
    )


async def reconcile(
    ctx: Context,
    body: Mapping[str, Any],
    *,
    pods: Iterable[PodView],
    rivals: Iterable[Rival],
    now: dt.datetime,
) -> tuple[Step, list[Transition]]:
    """One pass over one Recording; returns what was done (its `events` describe actions taken)
    and the transitions, the bot's and its own, to announce now as Events."""
    meta = body["metadata"]
    owner = Owner(meta["namespace"], meta["name"], meta["uid"])
    first = observe(body, pods=pods, now=now, recorded_elsewhere_by=_rival(owner.uid, rivals))
    if not any(p.active for p in first.pods) and first.phase not in TERMINAL:
        # Secrets are read only when a pod may be created, not on every pass.
        first = replace(first, missing_secrets=await _missing(ctx, owner.namespace, first.spec))
    step = next_step(first, ctx.settings.bot)
    if step.create_attempt is not None and first.desired is not DesiredState.STOPPED:
        # Only for a pod about to start (one that only finishes uploads draws nothing): no
        # fetch for a Recording that waits, or will fail for another reason.
        watermark = await prepare_watermark(ctx.api, ctx.egress, owner, first.spec)
        if watermark is not None:
            first = replace(first, watermark=watermark)
            step = next_step(first, ctx.settings.bot)
    if not await _still_current(ctx, owner, step, body):
        return Step(), []  # decided on a stale view: the next pass decides on fresh state
    try:
        created = await _carry_out(ctx, owner, first.spec, step, first.now)
    except Conflict as exc:  # an earlier Recording's objects still await the collector
        log.warning(
            "waiting", extra={"recording": f"{owner.namespace}/{owner.name}", "why": str(exc)}
        )
        return Step(), []
    try:
        await _write_status(ctx, body, step, _operator_fields(body, first, step, created))
    except Conflict:  # the actions stand (their Events too); the transitions are decided again
        return replace(step, transitions=()), []
    phase = _phase_after(first, step)
    ctx.metrics.phases[owner.uid] = str(phase) if phase else "NONE"
    announced = int((body.get("status") or {}).get("announcedTransitions") or 0)
    return step, [*first.history[announced:], *step.transitions]


async def _still_current(ctx: Context, owner: Owner, step: Step, body: Mapping[str, Any]) -> bool:
    """Whether a step that acts was decided on the Recording as it is now: the pod watch and
    the Recording watch are separate streams, so a pod can be seen to end before the status
    its bot wrote last."""
    if step.create_attempt is None and not step.delete_pods and not step.transitions:
        return True
    fresh = await asyncio.to_thread(ctx.api.get_recording, owner.namespace, owner.name)
    return bool(fresh["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"])


async def _carry_out(
    ctx: Context, owner: Owner, spec: RecordingSpec, step: Step, now: dt.datetime
) -> PodView | None:
    """Delete and create pods as `step` says; returns the pod it created, if any."""
    for name in step.delete_pods:
        await asyncio.to_thread(ctx.api.delete_pod, owner.namespace, name)
    if step.create_attempt is None:
        return None
    await _start_attempt(ctx, owner, spec, step.create_attempt)
    return PodView(
        name=pod_name(owner, step.create_attempt),
        attempt=step.create_attempt,
        phase="Pending",
        created_at=now,
    )
