"""kopf handlers: parse what kopf hands over, call `reconcile`, report. Nothing else.

Registered into a registry by `register`, so the settings (the reconcile interval among them)
come from the operator's config file rather than from import-time globals.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import functools
import logging
from typing import Any

import kopf

from tapedeck_bot.contract import (
    GROUP,
    PLURAL,
    TERMINAL,
    VERSION,
    Phase,
    Transition,
)
from tapedeck_operator.aftercare import Aftercare
from tapedeck_operator.kube import in_cluster
from tapedeck_operator.manifests import MANAGED_BY
from tapedeck_operator.observing import (
    active_meeting_key,
    parse_time,
    phase_of,
    pod_view,
    recording_uid_of,
)
from tapedeck_operator.policy import PodView, Step
from tapedeck_operator.reconcile import Context, Rival, reconcile
from tapedeck_operator.sweep import leave_tombstone, sweep_forever

__all__ = ["post_event", "register"]

log = logging.getLogger("tapedeck_operator")

_RECORDINGS = (GROUP, VERSION, PLURAL)
# After this long past its deletion, a Recording is let go even if its bot never finished.
_DELETE_SLACK_S = 30
_RETRY_S = 2.0


def _configure(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events say what happened
    settings.scanning.disabled = True  # fixed resources: no CRD or namespace watching (RBAC)
    # The API server filters the pod watch: only bot pods reach the operator, not every pod.
    settings.watching.label_selectors["pods"] = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    settings.execution.max_workers = 16
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 5, 10, 20]


def _post_events(body: kopf.Body, step: Step, transitions: list[Transition]) -> None:
    status = body.get("status") or {}
    for transition in transitions:
        kind = "Warning" if transition.phase is Phase.ERRORED else "Normal"
        reason = transition.phase.value.capitalize()
        message = transition.reason or ""
        if transition.phase is Phase.ERRORED:
            message = step.error or status.get("error") or message
        kopf.event(body, type=kind, reason=reason, message=message)
    for reason, message in step.events:
        kopf.event(body, type="Normal", reason=reason, message=message)


def post_event(body: Any, kind: str, reason: str, message: str) -> None:
    kopf.event(body, type=kind, reason=reason, message=message)


def register(registry: kopf.OperatorRegistry, ctx: Context, aftercare: Aftercare) -> None:
    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        _configure(settings)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In a pod, the official client's reading of the ServiceAccount; else kopf's reader of
        # $KUBECONFIG. The client's global configuration, which kopf would otherwise
        # piggyback on, is never loaded.
        pod = in_cluster()
        if pod is None:
            return kopf.login_with_kubeconfig(**kwargs)
        return kopf.ConnectionInfo(
            server=pod.server, ca_path=pod.ca_path, scheme="Bearer", token=pod.token
        )

    @kopf.index("pods", id="bot_pods", labels=MANAGED_BY, registry=registry)
    def bot_pods(body: kopf.Body, **_: Any) -> dict[str, PodView] | None:
        uid = recording_uid_of(body)
        return {uid: pod_view(body)} if uid else None

    @kopf.index(*_RECORDINGS, id="meetings", registry=registry)
    def meetings(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Rival] | None:
        key = active_meeting_key(body)
        meta = body["metadata"]
        return {key: Rival(meta["creationTimestamp"], meta["name"], meta["uid"])} if key else None

    async def run(live: kopf.Body, bot_pods: Any, meetings: Any) -> Step:
        uid = live["metadata"]["uid"]
        key = (live["metadata"]["namespace"], live["spec"]["meeting"]["id"])
        lock = ctx.locks.setdefault(uid, asyncio.Lock())
        async with lock:
            # kopf's body is a live view that changes while we await; decide on one snapshot.
            body = copy.deepcopy(dict(live))
            with ctx.metrics.reconcile_seconds.time():
                try:
                    step, announce = await reconcile(
                        ctx,
                        body,
                        pods=list(bot_pods.get(uid, [])),
                        rivals=list(meetings.get(key, [])),
                        now=dt.datetime.now(dt.UTC),
                    )
                except Exception:
                    ctx.metrics.reconcile_errors.inc()
                    raise
        _post_events(live, step, announce)
        if step != Step() or announce:
            log.info(
                "reconciled",
                extra={
                    "recording": f"{body['metadata']['namespace']}/{body['metadata']['name']}",
                    "transitions": [str(t.phase) for t in announce],
                    "attempt": step.create_attempt,
                    "deleted": list(step.delete_pods),
                    "problem": step.problem.reason if step.problem else None,
                },
            )
        return step

    # After an error (the API server away, say), try again soon rather than kopf's 60 s.
    @kopf.on.create(*_RECORDINGS, backoff=_RETRY_S, registry=registry)
    async def created(*, body: kopf.Body, **kwargs: Any) -> None:
        await run(body, kwargs["bot_pods"], kwargs["meetings"])

    @kopf.timer(
        *_RECORDINGS,
        interval=ctx.settings.reconcile_interval_seconds,
        backoff=_RETRY_S,
        registry=registry,
    )
    async def tick(*, body: kopf.Body, **kwargs: Any) -> None:
        # Finished Recordings too: the bot's last transition must still become a condition
        # and an Event. A pass over a Recording with a running bot, or a finished one, that
        # changes nothing makes no API call.
        await run(body, kwargs["bot_pods"], kwargs["meetings"])

    @kopf.on.delete(*_RECORDINGS, backoff=_RETRY_S, registry=registry)
    async def deleting(*, body: kopf.Body, **kwargs: Any) -> None:
        uid = body["metadata"]["uid"]
        await run(body, kwargs["bot_pods"], kwargs["meetings"])
        deleted_at = parse_time(body["metadata"].get("deletionTimestamp"))
        limit = ctx.settings.bot.grace_period_seconds + _DELETE_SLACK_S
        overdue = (
            deleted_at is not None
            and (dt.datetime.now(dt.UTC) - deleted_at).total_seconds() > limit
        )
        if phase_of(body) not in TERMINAL and not overdue:
            raise kopf.TemporaryError("waiting for the bot to finish its uploads", delay=2)
        # The after-care loop stopped at the deletion: the bot's last transitions still get
        # their URLs and webhooks, which the deletion waits for (as it waits for the bot).
        await aftercare.run_pass(body, copies=False)
        waiting = aftercare.undelivered(body)
        if waiting and not overdue:
            raise kopf.TemporaryError(f"{waiting} webhook deliveries are being retried", delay=2)
        if waiting:
            message = f"{waiting} webhook deliveries given up: the Recording was deleted"
            post_event(body, "Warning", "WebhookFailed", message)
        await leave_tombstone(ctx.api, ctx.settings, body, dt.datetime.now(dt.UTC))
        aftercare.forget(uid)
        ctx.locks.pop(uid, None)
        ctx.metrics.phases.pop(uid, None)

    @kopf.on.event(*_RECORDINGS, registry=registry)
    async def changed(*, body: kopf.Body, **_: Any) -> None:
        aftercare.wake(body["metadata"]["uid"])  # async: on the loop the after-care waits in

    # Download URLs, transfers, retention and webhooks: a loop per Recording, woken by its
    # watch events, so a webhook goes out as soon as the bot's transition arrives.
    @kopf.daemon(*_RECORDINGS, cancellation_timeout=30, backoff=_RETRY_S, registry=registry)
    async def after_recording(*, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
        uid = body["metadata"]["uid"]

        async def wake_when_stopped() -> None:  # a pass under way finishes, then it stops
            await stopped.wait()
            aftercare.wake(uid)

        waker = asyncio.create_task(wake_when_stopped())
        try:
            await aftercare.run(body, lambda: bool(stopped))
        finally:
            waker.cancel()

    # A deleted Recording's objects still expire: its tombstone, swept when due. A task of
    # its own, not a kopf timer, which would put a finalizer on the tombstones' ConfigMap.
    sweeping: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def start_sweeping(**_: Any) -> None:
        now = functools.partial(dt.datetime.now, dt.UTC)
        sweeping.append(asyncio.create_task(sweep_forever(ctx.api, ctx.settings, now)))

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        for task in sweeping:
            task.cancel()
        await aftercare.egress.close()
        aftercare.storage_threads.shutdown(wait=False, cancel_futures=True)
