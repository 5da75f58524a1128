"""Which webhook deliveries are due, and what one attempt's outcome makes of a delivery.

Pure: the durable state is `status.webhookDeliveries`, one entry per event and endpoint, so an
operator restart resumes the retries where they were (at least once, never skipped).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tapedeck_bot.contract import (
    DeliveryState,
    RecordingSpec,
    RecordingStatus,
    TransferState,
    TransferStatus,
    WebhookDelivery,
)
from tapedeck_operator.backoff import backoff_delay
from tapedeck_operator.config import WebhookSettings
from tapedeck_operator.webhooks.payloads import STATUS_UPDATE, TRANSFER_UPDATE

__all__ = [
    "Attempt",
    "Delivery",
    "Event",
    "Target",
    "after_attempt",
    "due_deliveries",
    "events_of",
    "next_attempt_at",
    "targets_of",
    "transfer_subject",
    "webhook_id",
]

# 408 and 429 say "later", like 5xx; any other 4xx will not change by sending it again.
_RETRYABLE_4XX = (408, 429)


@dataclass(frozen=True)
class Delivery:
    """The outcome of one POST (see egress); network problems are outcomes, not exceptions."""

    status: int | None  # HTTP status, None when no response came
    error: str | None  # None on 2xx, else a short text for the Recording's status
    retry_after: float | None = None  # seconds, from Retry-After
    # Refused before connecting (the SSRF guard, a non-http scheme): permanent, not retried.
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Event:
    kind: str  # STATUS_UPDATE or TRANSFER_UPDATE
    subject: str  # history/{i} or transfers/{i}


@dataclass(frozen=True)
class Target:
    name: str  # spec.webhooks[i] or settings.webhooks[i]: never the URL (it may hold a token)
    url: str
    secret_namespace: str
    secret_name: str
    secret_key: str

    @property
    def endpoint(self) -> str:
        """What a delivery is matched on: the URL, hashed (it may hold a token), so that
        reordering the list keeps each endpoint's state and a new URL gets every event."""
        scope = self.name.split(".")[0]
        return f"{scope}-{hashlib.sha256(self.url.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Attempt:
    event: Event
    target: Target
    delivery: WebhookDelivery


def events_of(status: RecordingStatus) -> list[Event]:
    """Every phase transition, and every transfer that has its final result, in order."""
    events = [Event(STATUS_UPDATE, f"history/{i}") for i in range(len(status.history))]
    final = (TransferState.SUCCEEDED, TransferState.FAILED)
    events += [
        Event(TRANSFER_UPDATE, transfer_subject(t)) for t in status.transfers if t.state in final
    ]
    return events


def transfer_subject(transfer: TransferStatus) -> str:
    """A destination's event, by what it is rather than its place in the list."""
    return f"transfers/{hashlib.sha256(transfer.destination.encode()).hexdigest()[:16]}"


def webhook_id(recording_uid: str, event: Event) -> str:
    """Stable across retries and restarts: derived, not stored first."""
    name = f"{recording_uid}/{event.kind}/{event.subject}"
    return "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"tapedeck:{name}").hex


def targets_of(namespace: str, spec: RecordingSpec, settings: WebhookSettings) -> list[Target]:
    own = [
        Target(f"spec.webhooks[{i}]", w.url, namespace, w.secret_ref.name, w.secret_ref.key)
        for i, w in enumerate(spec.webhooks)
    ]
    cluster = [
        Target(
            f"settings.webhooks[{i}]",
            e.url,
            e.secret_ref.namespace,
            e.secret_ref.name,
            e.secret_ref.key,
        )
        for i, e in enumerate(settings.endpoints)
    ]
    return own + cluster


def due_deliveries(
    recording_uid: str,
    events: Sequence[Event],
    targets: Iterable[Target],
    deliveries: Iterable[WebhookDelivery],
    now: dt.datetime,
) -> list[Attempt]:
    """What to send now, per endpoint in event order (so a receiver sees the phases in the
    order they happened, unless a retry reorders them)."""
    known = {(d.endpoint, d.subject): d for d in deliveries}
    due = []
    for target in targets:
        for event in events:
            delivery = known.get((target.endpoint, event.subject)) or WebhookDelivery(
                id=webhook_id(recording_uid, event),
                target=target.name,
                endpoint=target.endpoint,
                event=event.kind,
                subject=event.subject,
            )
            waiting = delivery.next_attempt_at is not None and delivery.next_attempt_at > now
            if delivery.state is DeliveryState.PENDING and not waiting:
                due.append(
                    Attempt(event, target, delivery.model_copy(update={"target": target.name}))
                )
    return due


def after_attempt(
    delivery: WebhookDelivery,
    outcome: Delivery,
    now: dt.datetime,
    settings: WebhookSettings,
    jitter: float,
) -> WebhookDelivery:
    first = delivery.first_attempt_at or now
    tried = delivery.model_copy(
        update={
            "attempts": delivery.attempts + 1,
            "first_attempt_at": first,
            "last_status": outcome.status,
            "last_error": outcome.error[:1024] if outcome.error else None,
            "next_attempt_at": None,
        }
    )
    if outcome.ok:
        return tried.model_copy(update={"state": DeliveryState.DELIVERED, "delivered_at": now})
    status = outcome.status or 0
    if outcome.refused or (400 <= status < 500 and status not in _RETRYABLE_4XX):
        return tried.model_copy(update={"state": DeliveryState.FAILED})
    delay = backoff_delay(
        tried.attempts,
        initial=settings.initial_backoff_seconds,
        cap=settings.max_backoff_seconds,
        jitter=jitter,
    )
    if outcome.retry_after is not None:
        delay = max(delay, min(outcome.retry_after, settings.max_backoff_seconds))
    next_at = now + dt.timedelta(seconds=delay)
    if (next_at - first).total_seconds() > settings.retry_window_seconds:
        gave_up = f"gave up after {tried.attempts} attempts: {outcome.error}"
        return tried.model_copy(
            update={"state": DeliveryState.FAILED, "last_error": gave_up[:1024]}
        )
    return tried.model_copy(update={"next_attempt_at": next_at})


def next_attempt_at(deliveries: Iterable[WebhookDelivery]) -> dt.datetime | None:
    waiting = [
        d.next_attempt_at
        for d in deliveries
        if d.state is DeliveryState.PENDING and d.next_attempt_at is not None
    ]
    return min(waiting, default=None)
