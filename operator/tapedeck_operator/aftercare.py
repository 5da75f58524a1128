"""After the recording: download URLs, transfers, retention and webhooks, for one Recording.

One `Aftercare.run` loop per Recording (a kopf daemon) is the only writer of its status keys
(`downloadUrl`, `downloadUrlExpiry`, `downloads`, `transfers`, `webhookDeliveries`,
`expiresAt`, `expired`), so it patches them without a resourceVersion precondition, and it
decides on what it wrote last: the watch may not have brought that back yet, and deciding on
an older view would send a webhook twice. Each step fails on its own, with backoff and a
Warning Event, and never stops the others. Decisions are in `downloads`, `transfers`,
`retention` and `webhooks.delivery` (pure).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tapedeck_bot.contract import (
    DeliveryState,
    Phase,
    RecordingSpec,
    RecordingStatus,
    TransferState,
    TransferStatus,
    WebhookDelivery,
)
from tapedeck_bot.storage import (
    Destination,
    PresignedUrl,
    TransferResult,
    delete_recording,
    part_size_for,
    presign,
    recording_prefix,
    transfer,
)
from tapedeck_operator.backoff import backoff_delay
from tapedeck_operator.config import OperatorSettings
from tapedeck_operator.downloads import download_fields, renew_at
from tapedeck_operator.kube import ClusterApi, NotFound
from tapedeck_operator.manifests import effective_storage
from tapedeck_operator.metrics import OperatorMetrics
from tapedeck_operator.retention import expires_at, retention_days
from tapedeck_operator.stores import opened_storage
from tapedeck_operator.transfers import due_transfers, finished, started, transfer_entries
from tapedeck_operator.webhooks.delivery import (
    Attempt,
    Delivery,
    Target,
    after_attempt,
    due_deliveries,
    events_of,
    next_attempt_at,
    targets_of,
    transfer_subject,
)
from tapedeck_operator.webhooks.egress import Egress
from tapedeck_operator.webhooks.payloads import (
    STATUS_UPDATE,
    RecordingRef,
    encode,
    status_update,
    transfer_update,
)
from tapedeck_operator.webhooks.signing import SigningError, parse_secret, sign

__all__ = ["Aftercare", "Emit"]

log = logging.getLogger("tapedeck_operator.aftercare")

Emit = Callable[[Mapping[str, Any], str, str, str], None]  # (body, type, reason, message)
T = TypeVar("T")
_IDLE_WAKE_S = 300.0  # nothing scheduled: look again now and then anyway
_STEP_BACKOFF_S = (5.0, 600.0)  # a failing step: first retry, longest wait
_TRANSFER_RESULTS = {TransferState.SUCCEEDED: "succeeded", TransferState.FAILED: "failed"}
_DELIVERY_RESULTS = {DeliveryState.DELIVERED: "delivered", DeliveryState.FAILED: "failed"}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _no_events(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    pass


@dataclass(frozen=True)
class _Failing:
    failures: int
    retry_at: dt.datetime
    message: str


@dataclass
class _Recording:
    """What the loop of one Recording keeps between passes."""

    written: dict[str, Any] = field(default_factory=dict)  # its keys, as last decided
    unsaved: dict[str, Any] = field(default_factory=dict)  # ... and not yet in the API server
    copies: dict[str, asyncio.Future[TransferResult]] = field(default_factory=dict)
    failing: dict[str, _Failing] = field(default_factory=dict)  # by step
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Aftercare:
    api: ClusterApi
    settings: OperatorSettings
    egress: Egress
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    emit: Emit = _no_events
    clock: Callable[[], dt.datetime] = _utcnow
    jitter: Callable[[], float] = random.random
    # Copies and deletes take long: their own threads, not the pool every API call uses.
    storage_threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="tapedeck-storage")
    )
    _recordings: dict[str, _Recording] = field(default_factory=dict)

    def wake(self, uid: str) -> None:
        """A watch event for the Recording: look at it now rather than at the next due time."""
        state = self._recordings.get(uid)
        if state is not None:
            state.wake.set()

    def forget(self, uid: str) -> None:
        state = self._recordings.pop(uid, None)
        for copying in (state.copies if state else {}).values():
            copying.cancel()

    def undelivered(self, live: Mapping[str, Any]) -> int:
        """Deliveries still being retried, as this loop last decided."""
        status = RecordingStatus.model_validate(self._view(live).get("status") or {})
        return sum(d.state is DeliveryState.PENDING for d in status.webhook_deliveries)

    def _state(self, uid: str) -> _Recording:
        return self._recordings.setdefault(uid, _Recording())

    async def run(self, live: Mapping[str, Any], stopped: Callable[[], bool]) -> None:
        """Until `stopped()` (which must also `wake`): a pass, then sleep until the next thing
        is due or the Recording changes."""
        state = self._state(live["metadata"]["uid"])
        while not stopped():
            state.wake.clear()
            try:
                next_at = await self.run_pass(live)
            except NotFound:
                return
            delay = (next_at - self.clock()).total_seconds() if next_at else _IDLE_WAKE_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wake.wait(), timeout=min(max(delay, 0), _IDLE_WAKE_S))

    async def run_pass(self, live: Mapping[str, Any], *, copies: bool = True) -> dt.datetime | None:
        """One look at the Recording; returns when the next one is due (None: only on a
        change). `copies=False` starts no transfer (the Recording is going away)."""
        state = self._state(live["metadata"]["uid"])
        if state.unsaved:
            await self._step(live, "status", lambda: self._write(live, {}))
        body = self._view(live)
        spec = RecordingSpec.model_validate(body["spec"])
        status = RecordingStatus.model_validate(body.get("status") or {})
        now = self.clock()
        fields = await self._step(
            body, "retention", lambda: self._retention(body, spec, status, now)
        )
        fields = fields or {}
        if fields.get("expired"):  # nothing left to hand out or copy
            status = status.model_copy(update={"expired": True})
        fields |= (
            await self._step(body, "downloads", lambda: self._downloads(body, spec, status, now))
            or {}
        )
        entries, to_start = self._transfers(state, spec, status, now, copies=copies)
        if entries is not None:
            fields["transfers"] = [t.to_wire() for t in entries]
        if fields:
            await self._step(body, "status", lambda: self._write(body, fields))
            body = self._view(live)
            status = RecordingStatus.model_validate(body["status"])
        for entry in to_start:
            self._start_copy(body, spec, state, entry)
        await self._step(body, "webhooks", lambda: self._deliver(body, spec, status))
        return self._next_due(state, RecordingStatus.model_validate(self._view(live)["status"]))

    def _next_due(self, state: _Recording, status: RecordingStatus) -> dt.datetime | None:
        waiting = [t.next_attempt_at for t in status.transfers if t.state is TransferState.PENDING]
        times = [
            next_attempt_at(status.webhook_deliveries),
            renew_at(status, self.settings.downloads),
            None if status.expired else status.expires_at,
            *(f.retry_at for f in state.failing.values()),
            *waiting,
        ]
        return min((t for t in times if t is not None), default=None)

    def _view(self, live: Mapping[str, Any]) -> dict[str, Any]:
        """The Recording as kopf last saw it, with this loop's own keys as it last decided."""
        body = copy.deepcopy(dict(live))
        written = self._state(body["metadata"]["uid"]).written
        status = body.setdefault("status", {})
        for key, value in written.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        return body

    async def _write(self, body: Mapping[str, Any], fields: dict[str, Any]) -> None:
        """Decided is decided: the next pass builds on these fields even if this write fails,
        and writes them again first (a webhook sent is not sent again for a lost write)."""
        meta = body["metadata"]
        state = self._state(meta["uid"])
        state.written.update(fields)
        state.unsaved.update(fields)
        patch = dict(state.unsaved)
        await asyncio.to_thread(
            self.api.patch_recording_status, meta["namespace"], meta["name"], patch
        )
        for key, value in patch.items():
            if state.unsaved.get(key) is value:
                del state.unsaved[key]

    async def _step(
        self, body: Mapping[str, Any], name: str, action: Callable[[], Awaitable[T]]
    ) -> T | None:
        """Run one step unless it is backing off after a failure; a failure is logged and
        posted as an Event once per distinct message, and retried with backoff."""
        state = self._state(body["metadata"]["uid"])
        failing = state.failing.get(name)
        now = self.clock()
        if failing is not None and failing.retry_at > now:
            return None
        try:
            result = await action()
        except NotFound:
            raise
        except Exception as exc:
            message = f"{name}: {exc}" if str(exc) else f"{name}: {type(exc).__name__}"
            failures = failing.failures + 1 if failing else 1
            first, cap = _STEP_BACKOFF_S
            delay = backoff_delay(failures, initial=first, cap=cap, jitter=self.jitter())
            state.failing[name] = _Failing(failures, now + dt.timedelta(seconds=delay), message)
            if failing is None or failing.message != message:
                log.warning(
                    "after-care step failed", extra={"recording": _name(body), "error": message}
                )
                self.emit(body, "Warning", "AftercareFailed", message[:1024])
            return None
        state.failing.pop(name, None)
        return result

    async def _retention(
        self,
        body: Mapping[str, Any],
        spec: RecordingSpec,
        status: RecordingStatus,
        now: dt.datetime,
    ) -> dict[str, Any]:
        due = expires_at(spec, status, self.settings.retention)
        if due is None or status.expired:
            return {}
        fields: dict[str, Any] = {}
        if status.expires_at != due:
            fields["expiresAt"] = due.isoformat()
        storage = effective_storage(spec, self.settings)
        if now < due or storage is None:
            return fields
        prefix = recording_prefix(storage.path, body["metadata"]["uid"])

        def delete() -> tuple[str, ...]:
            with opened_storage(self.api, body["metadata"]["namespace"], storage) as store:
                return delete_recording(store, prefix)

        loop = asyncio.get_running_loop()
        deleted = await loop.run_in_executor(self.storage_threads, delete)
        self.metrics.expired.inc(len(deleted))
        days = retention_days(spec, self.settings.retention)
        self.emit(body, "Normal", "Expired", f"deleted {len(deleted)} objects after {days} days")
        return fields | {
            "expired": True,
            "downloads": [],
            "downloadUrl": None,
            "downloadUrlExpiry": None,
        }

    async def _downloads(
        self,
        body: Mapping[str, Any],
        spec: RecordingSpec,
        status: RecordingStatus,
        now: dt.datetime,
    ) -> dict[str, Any]:
        due = renew_at(status, self.settings.downloads)
        storage = effective_storage(spec, self.settings)
        if due is None or due > now or storage is None or status.expired:
            return {}
        expiry = dt.timedelta(seconds=self.settings.downloads.expiry_seconds)

        def sign_all() -> dict[str, PresignedUrl]:
            with opened_storage(self.api, body["metadata"]["namespace"], storage) as store:
                return {o.key: presign(store, o.key, expiry) for o in status.outputs}

        return download_fields(status, await asyncio.to_thread(sign_all))

    def _transfers(
        self,
        state: _Recording,
        spec: RecordingSpec,
        status: RecordingStatus,
        now: dt.datetime,
        *,
        copies: bool,
    ) -> tuple[list[TransferStatus] | None, list[TransferStatus]]:
        """The destinations' new entries (None: unchanged) and the copies to start."""
        if status.phase is not Phase.UPLOADED or not spec.transfers or status.expired:
            return None, []
        entries = {t.destination: t for t in transfer_entries(spec.transfers, status.transfers)}
        for name, copying in list(state.copies.items()):
            if copying.done():
                del state.copies[name]
                if name in entries:  # else the destination was taken out of the spec
                    entries[name] = finished(
                        entries[name],
                        _result_of(copying, name),
                        now,
                        self.settings.transfers,
                        self.jitter(),
                    )
                    result = _TRANSFER_RESULTS.get(entries[name].state, "retrying")
                    self.metrics.transfers.labels(result).inc()
        to_start = []
        if copies:
            for name in due_transfers(list(entries.values()), state.copies.keys(), now):
                entries[name] = started(entries[name])
                to_start.append(entries[name])
        changed = list(entries.values())
        return (changed if changed != status.transfers else None), to_start

    def _start_copy(
        self, body: Mapping[str, Any], spec: RecordingSpec, state: _Recording, entry: TransferStatus
    ) -> None:
        meta = body["metadata"]
        source_spec = effective_storage(spec, self.settings)
        if source_spec is None:
            return
        destination = spec.transfers[entry.index]
        keys = [o.key for o in RecordingStatus.model_validate(body["status"]).outputs]
        part_size = part_size_for(spec.max_seconds, self.settings.bot.upload.part_size_bytes)

        def copy_all() -> TransferResult:
            with (
                opened_storage(self.api, meta["namespace"], source_spec) as source,
                opened_storage(self.api, meta["namespace"], destination) as dest,
            ):
                [result] = transfer(
                    source,
                    recording_prefix(source_spec.path, meta["uid"]),
                    keys,
                    [Destination(dest, recording_prefix(destination.path, meta["uid"]))],
                    part_size=part_size,
                )
                return result

        copying = asyncio.get_running_loop().run_in_executor(self.storage_threads, copy_all)
        copying.add_done_callback(lambda _: state.wake.set())
        state.copies[entry.destination] = copying

    async def _deliver(
        self, body: Mapping[str, Any], spec: RecordingSpec, status: RecordingStatus
    ) -> None:
        meta = body["metadata"]
        targets = targets_of(meta["namespace"], spec, self.settings.webhooks)
        due = due_deliveries(
            meta["uid"], events_of(status), targets, status.webhook_deliveries, self.clock()
        )
        if not due:
            return
        ref = RecordingRef(meta["uid"], meta["namespace"], meta["name"], spec.meeting.id)
        by_target: dict[str, list[Attempt]] = {}
        for attempt in due:
            by_target.setdefault(attempt.target.endpoint, []).append(attempt)
        sent = await asyncio.gather(
            *(self._send_in_order(ref, status, attempts) for attempts in by_target.values())
        )
        done = {(d.endpoint, d.subject): d for batch in sent for d in batch}
        kept = [d for d in status.webhook_deliveries if (d.endpoint, d.subject) not in done]
        for delivery in done.values():
            if delivery.attempts:
                self.metrics.webhook_attempts.labels(
                    _DELIVERY_RESULTS.get(delivery.state, "retrying")
                ).inc()
            if delivery.state is DeliveryState.FAILED:
                message = f"{delivery.target} {delivery.subject}: {delivery.last_error}"
                self.emit(body, "Warning", "WebhookFailed", message[:1024])
        deliveries = [*kept, *done.values()]
        await self._write(body, {"webhookDeliveries": [d.to_wire() for d in deliveries]})

    async def _send_in_order(
        self, ref: RecordingRef, status: RecordingStatus, attempts: Sequence[Attempt]
    ) -> list[WebhookDelivery]:
        """One endpoint's due events, one after the other, so it sees them in order. After a
        failure worth retrying, the rest wait for the same retry: an endpoint that is down
        costs one timeout a pass, not one per event."""
        secrets = await self._secret(attempts[0].target)
        results: list[WebhookDelivery] = []
        for attempt in attempts:
            retry = next((r for r in results if r.state is DeliveryState.PENDING), None)
            if retry is not None:
                results.append(
                    attempt.delivery.model_copy(update={"next_attempt_at": retry.next_attempt_at})
                )
                continue
            if isinstance(secrets, str):
                outcome = Delivery(status=None, error=secrets)
            else:
                body = encode(_payload(ref, status, attempt))
                headers = sign(attempt.delivery.id, int(self.clock().timestamp()), body, secrets)
                outcome = await self.egress.post(attempt.target.url, body, headers)
            results.append(
                after_attempt(
                    attempt.delivery, outcome, self.clock(), self.settings.webhooks, self.jitter()
                )
            )
        return results

    async def _secret(self, target: Target) -> list[bytes] | str:
        """The signing keys, or why there are none (retried like a failed request: the Secret
        may be created late)."""
        where = f"Secret {target.secret_namespace}/{target.secret_name}"
        data = await asyncio.to_thread(
            self.api.read_secret, target.secret_namespace, target.secret_name
        )
        if data is None:
            return f"{where} (the webhook's secretRef) does not exist"
        if target.secret_key not in data:
            return f"{where} has no key {target.secret_key!r} (the webhook's secretRef.key)"
        try:  # several secrets, space-separated, while rotating: each signs
            value = base64.b64decode(data[target.secret_key]).decode()
            return [parse_secret(secret) for secret in value.split()]
        except (SigningError, UnicodeDecodeError) as exc:
            return f"{where} key {target.secret_key!r}: {exc}"


def _payload(ref: RecordingRef, status: RecordingStatus, attempt: Attempt) -> dict[str, Any]:
    if attempt.event.kind == STATUS_UPDATE:
        return status_update(ref, status, int(attempt.event.subject.split("/")[1]))
    [entry] = [t for t in status.transfers if transfer_subject(t) == attempt.event.subject]
    return transfer_update(ref, status, entry)


def _result_of(copying: asyncio.Future[TransferResult], destination: str) -> TransferResult:
    try:
        return copying.result()
    except Exception as exc:  # a missing Secret, bad credentials: this destination's error
        return TransferResult(destination, (), 0, error=str(exc) or type(exc).__name__)


def _name(body: Mapping[str, Any]) -> str:
    return f"{body['metadata'].get('namespace')}/{body['metadata'].get('name')}"
