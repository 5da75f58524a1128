"""After the recording: download URLs, transfers, retention and webhooks, for one Recording.

One `Aftercare.run` loop per Recording (a kopf daemon) is the only writer of `OWN_KEYS`, so it
patches them without a resourceVersion precondition, and it keeps what it wrote last: the
watch may not have brought that back yet, and deciding on an older view would send a webhook
twice. Decisions are in `downloads`, `transfers`, `retention` and `webhooks.delivery` (pure).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime as dt
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    Target,
    after_attempt,
    due_deliveries,
    events_of,
    next_attempt_at,
    targets_of,
)
from tapedeck_operator.webhooks.egress import Delivery, Egress
from tapedeck_operator.webhooks.payloads import (
    STATUS_UPDATE,
    RecordingRef,
    encode,
    status_update,
    transfer_update,
)
from tapedeck_operator.webhooks.signing import SigningError, parse_secret, sign

__all__ = ["OWN_KEYS", "Aftercare", "Emit"]

log = logging.getLogger("tapedeck_operator.aftercare")

OWN_KEYS = (
    "downloadUrl",
    "downloadUrlExpiry",
    "downloads",
    "transfers",
    "webhookDeliveries",
    "expiresAt",
    "expired",
)
Emit = Callable[[Mapping[str, Any], str, str, str], None]  # (body, type, reason, message)
_IDLE_WAKE_S = 300.0  # nothing scheduled: look again now and then anyway
_ERROR_WAKE_S = 2.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _no_events(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    pass


@dataclass
class _Recording:
    """What the loop of one Recording keeps between passes."""

    written: dict[str, Any] = field(default_factory=dict)  # OWN_KEYS as last written
    copies: dict[int, asyncio.Task[TransferResult]] = field(default_factory=dict)
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
    _recordings: dict[str, _Recording] = field(default_factory=dict)

    def wake(self, uid: str) -> None:
        """A watch event for the Recording: look at it now rather than at the next due time."""
        state = self._recordings.get(uid)
        if state is not None:
            state.wake.set()

    def forget(self, uid: str) -> None:
        state = self._recordings.pop(uid, None)
        for task in (state.copies if state else {}).values():
            task.cancel()

    def _state(self, uid: str) -> _Recording:
        return self._recordings.setdefault(uid, _Recording())

    async def run(self, live: Mapping[str, Any], stopped: Callable[[], bool]) -> None:
        """Until `stopped()`: a pass, then sleep until the next thing is due or a wake."""
        uid = live["metadata"]["uid"]
        state = self._state(uid)
        while not stopped():
            state.wake.clear()
            try:
                next_at = await self.run_pass(live)
            except NotFound:
                return
            except Exception:
                log.exception("aftercare pass failed", extra={"recording": _name(live)})
                next_at = self.clock() + dt.timedelta(seconds=_ERROR_WAKE_S)
            delay = (next_at - self.clock()).total_seconds() if next_at else _IDLE_WAKE_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wake.wait(), timeout=min(max(delay, 0), 300))

    async def run_pass(self, live: Mapping[str, Any]) -> dt.datetime | None:
        """One look at the Recording; returns when the next one is due (None: only on change)."""
        body = self._view(live)
        state = self._state(body["metadata"]["uid"])
        spec = RecordingSpec.model_validate(body["spec"])
        status = RecordingStatus.model_validate(body.get("status") or {})
        now = self.clock()
        fields = await self._retention(body, spec, status, now)
        if fields.get("expired"):  # nothing left to hand out or copy
            status = status.model_copy(update={"expired": True})
        fields |= await self._downloads(body, spec, status, now)
        entries, to_start = self._transfers(state, spec, status, now)
        if entries is not None:
            fields["transfers"] = [t.to_wire() for t in entries]
        if fields:
            await self._write(body, fields)
            body = self._view(live)
            status = RecordingStatus.model_validate(body["status"])
        for index in to_start:
            self._start_copy(body, spec, state, index)
        await self._deliver(body, spec, status)
        status = RecordingStatus.model_validate(self._view(live).get("status") or {})
        return _earliest(
            next_attempt_at(status.webhook_deliveries),
            renew_at(status, self.settings.downloads),
            None if status.expired else status.expires_at,
            *(t.next_attempt_at for t in status.transfers if t.state is TransferState.PENDING),
        )

    def _view(self, live: Mapping[str, Any]) -> dict[str, Any]:
        """The Recording as kopf last saw it, with this loop's own keys as it last wrote them."""
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
        """Keep the fields as written before sending them: if the write fails, the next pass
        still knows what was sent and retries the write, not the webhooks."""
        meta = body["metadata"]
        self._state(meta["uid"]).written.update(fields)
        await asyncio.to_thread(
            self.api.patch_recording_status, meta["namespace"], meta["name"], fields
        )

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

        deleted = await asyncio.to_thread(delete)
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
        self, state: _Recording, spec: RecordingSpec, status: RecordingStatus, now: dt.datetime
    ) -> tuple[list[TransferStatus] | None, list[int]]:
        """The destinations' new entries (None: unchanged) and which copies to start."""
        if status.phase is not Phase.UPLOADED or not spec.transfers or status.expired:
            return None, []
        entries = transfer_entries(spec.transfers, status.transfers)
        for index, task in list(state.copies.items()):
            if task.done():
                del state.copies[index]
                result = _result_of(task, entries[index].destination)
                entries[index] = finished(
                    entries[index], result, now, self.settings.transfers, self.jitter()
                )
                outcome = {
                    TransferState.SUCCEEDED: "succeeded",
                    TransferState.FAILED: "failed",
                }.get(entries[index].state, "retrying")
                self.metrics.transfers.labels(outcome).inc()
        to_start = due_transfers(entries, state.copies.keys(), now)
        for index in to_start:
            entries[index] = started(entries[index])
        return (entries if entries != status.transfers else None), to_start

    def _start_copy(
        self, body: Mapping[str, Any], spec: RecordingSpec, state: _Recording, index: int
    ) -> None:
        meta = body["metadata"]
        source_spec = effective_storage(spec, self.settings)
        if source_spec is None:
            return
        destination = spec.transfers[index]
        status = RecordingStatus.model_validate(body["status"])
        keys = [o.key for o in status.outputs]
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

        task = asyncio.create_task(asyncio.to_thread(copy_all))
        task.add_done_callback(lambda _: state.wake.set())
        state.copies[index] = task

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
            by_target.setdefault(attempt.target.name, []).append(attempt)
        sent = await asyncio.gather(
            *(self._send_in_order(ref, status, attempts) for attempts in by_target.values())
        )
        done = {(d.target, d.subject): d for batch in sent for d in batch}
        kept = [d for d in status.webhook_deliveries if (d.target, d.subject) not in done]
        deliveries = [*kept, *done.values()]
        for delivery in done.values():
            result = {DeliveryState.DELIVERED: "delivered", DeliveryState.FAILED: "failed"}
            self.metrics.webhook_attempts.labels(result.get(delivery.state, "retrying")).inc()
            if delivery.state is DeliveryState.FAILED:
                message = f"{delivery.target} {delivery.subject}: {delivery.last_error}"
                self.emit(body, "Warning", "WebhookFailed", message)
        await self._write(body, {"webhookDeliveries": [d.to_wire() for d in deliveries]})

    async def _send_in_order(
        self, ref: RecordingRef, status: RecordingStatus, attempts: Sequence[Attempt]
    ) -> list[WebhookDelivery]:
        """One endpoint's due events, one after the other, so it sees them in order."""
        secrets = await self._secret(attempts[0].target)
        results = []
        for attempt in attempts:
            payload = _payload(ref, status, attempt)
            if isinstance(secrets, str):
                outcome = Delivery(status=None, error=secrets, retry_after=None)
            else:
                now = self.clock()
                headers = sign(attempt.delivery.id, int(now.timestamp()), encode(payload), secrets)
                outcome = await self.egress.post(attempt.target.url, encode(payload), headers)
            results.append(
                after_attempt(
                    attempt.delivery, outcome, self.clock(), self.settings.webhooks, self.jitter()
                )
            )
        return results

    async def _secret(self, target: Target) -> list[bytes] | str:
        """The signing key, or why there is none (retried like a failed request: the Secret
        may be created late)."""
        where = f"Secret {target.secret_namespace}/{target.secret_name}"
        data = await asyncio.to_thread(
            self.api.read_secret, target.secret_namespace, target.secret_name
        )
        if data is None:
            return f"{where} (the webhook's secretRef) does not exist"
        if target.secret_key not in data:
            return f"{where} has no key {target.secret_key!r} (the webhook's secretRef.key)"
        try:
            return [parse_secret(base64.b64decode(data[target.secret_key]).decode())]
        except (SigningError, UnicodeDecodeError) as exc:
            return f"{where} key {target.secret_key!r}: {exc}"


def _payload(ref: RecordingRef, status: RecordingStatus, attempt: Attempt) -> dict[str, Any]:
    index = int(attempt.event.subject.split("/")[1])
    if attempt.event.kind == STATUS_UPDATE:
        return status_update(ref, status, index)
    [entry] = [t for t in status.transfers if t.index == index]
    return transfer_update(ref, status, entry)


def _result_of(task: asyncio.Task[TransferResult], destination: str) -> TransferResult:
    try:
        return task.result()
    except Exception as exc:  # a missing Secret, bad credentials: this destination's error
        return TransferResult(destination, (), 0, error=str(exc) or type(exc).__name__)


def _earliest(*times: dt.datetime | None) -> dt.datetime | None:
    return min((t for t in times if t is not None), default=None)


def _name(body: Mapping[str, Any]) -> str:
    return f"{body['metadata'].get('namespace')}/{body['metadata'].get('name')}"
