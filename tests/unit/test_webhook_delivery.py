"""Which webhook deliveries are due, and what one attempt's outcome makes of a delivery."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from tapedeck_bot.contract import (
    DeliveryState,
    Phase,
    RecordingSpec,
    RecordingStatus,
    TransferState,
    TransferStatus,
    Transition,
    WebhookDelivery,
)
from tapedeck_operator.backoff import backoff_delay
from tapedeck_operator.config import WebhookSettings
from tapedeck_operator.webhooks.delivery import (
    Delivery,
    Event,
    Target,
    after_attempt,
    due_deliveries,
    events_of,
    next_attempt_at,
    targets_of,
    transfer_subject,
    webhook_id,
)
from tapedeck_operator.webhooks.payloads import STATUS_UPDATE, TRANSFER_UPDATE

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
UID = "5f0c7a1e-0000-4000-8000-000000000001"
SETTINGS = WebhookSettings(
    initial_backoff_seconds=5, max_backoff_seconds=3600, retry_window_seconds=86_400
)
OK = Delivery(200, None)
SERVER_ERROR = Delivery(500, "HTTP 500")


def _spec(webhooks: int = 2) -> RecordingSpec:
    return RecordingSpec.model_validate(
        {
            "meeting": {"id": "m1", "janus": {"url": "http://127.0.0.1:8088/janus", "room": 1234}},
            "webhooks": [
                {
                    "url": f"http://127.0.0.1:9/hook{i}",
                    "secretRef": {"name": f"webhook{i}", "key": "secret"},
                }
                for i in range(webhooks)
            ],
        }
    )


def _settings(**changes: Any) -> WebhookSettings:
    return SETTINGS.model_copy(update=changes)


def _status(phases: list[Phase], transfers: Sequence[TransferStatus] = ()) -> RecordingStatus:
    return RecordingStatus(
        history=[
            Transition(phase=p, at=T0 + dt.timedelta(minutes=i)) for i, p in enumerate(phases)
        ],
        transfers=list(transfers),
    )


def _transfer(index: int, state: TransferState) -> TransferStatus:
    return TransferStatus(index=index, destination=f"s3 us-east-1 copies{index}", state=state)


def _target(name: str) -> Target:
    return Target(name, "http://127.0.0.1:9/hook", "team-a", "webhook", "secret")


def _delivery(**changes: Any) -> WebhookDelivery:
    fields: dict[str, Any] = {
        "id": webhook_id(UID, Event(STATUS_UPDATE, "history/0")),
        "target": "spec.webhooks[0]",
        "endpoint": _target("spec.webhooks[0]").endpoint,
        "event": STATUS_UPDATE,
        "subject": "history/0",
    }
    return WebhookDelivery(**(fields | changes))


# backoff_delay


def test_the_first_delay_is_drawn_from_the_upper_half_of_the_initial_window() -> None:
    assert backoff_delay(1, initial=5, cap=3600, jitter=0) == 2.5
    assert backoff_delay(1, initial=5, cap=3600, jitter=0.999) == pytest.approx(4.9975)


def test_the_delay_doubles_with_each_attempt() -> None:
    delays = [backoff_delay(n, initial=5, cap=3600, jitter=0) for n in range(1, 6)]
    assert delays == [2.5, 5.0, 10.0, 20.0, 40.0]


def test_no_attempt_yet_waits_like_the_first() -> None:
    assert backoff_delay(0, initial=5, cap=3600, jitter=0.5) == backoff_delay(
        1, initial=5, cap=3600, jitter=0.5
    )


def test_the_delay_is_capped() -> None:
    assert backoff_delay(30, initial=5, cap=60, jitter=0) == 30
    assert backoff_delay(30, initial=5, cap=60, jitter=0.999) < 60


def test_a_very_late_attempt_waits_the_cap() -> None:
    assert backoff_delay(1025, initial=5, cap=60, jitter=0) == 30


# events_of


def test_there_is_one_event_per_history_entry() -> None:
    status = _status([Phase.INVOKED, Phase.RECORDING, Phase.UPLOADING, Phase.UPLOADED])
    assert events_of(status) == [
        Event(STATUS_UPDATE, "history/0"),
        Event(STATUS_UPDATE, "history/1"),
        Event(STATUS_UPDATE, "history/2"),
        Event(STATUS_UPDATE, "history/3"),
    ]


def test_a_transfer_is_an_event_only_once_it_succeeded_or_failed() -> None:
    status = _status(
        [Phase.INVOKED, Phase.UPLOADED],
        [
            _transfer(0, TransferState.PENDING),
            _transfer(1, TransferState.COPYING),
            _transfer(2, TransferState.SUCCEEDED),
            _transfer(3, TransferState.FAILED),
        ],
    )
    assert events_of(status) == [
        Event(STATUS_UPDATE, "history/0"),
        Event(STATUS_UPDATE, "history/1"),
        Event(TRANSFER_UPDATE, transfer_subject(status.transfers[2])),
        Event(TRANSFER_UPDATE, transfer_subject(status.transfers[3])),
    ]


def test_a_transfer_event_is_named_by_its_destination_not_its_place() -> None:
    moved = _transfer(0, TransferState.SUCCEEDED).model_copy(update={"index": 5})
    assert transfer_subject(moved) == transfer_subject(_transfer(0, TransferState.SUCCEEDED))
    assert transfer_subject(_transfer(1, TransferState.SUCCEEDED)) != transfer_subject(moved)


def test_an_endpoint_is_known_by_its_url_wherever_it_is_listed() -> None:
    moved = Target("spec.webhooks[3]", "http://127.0.0.1:9/hook", "team-a", "webhook", "secret")
    assert moved.endpoint == _target("spec.webhooks[0]").endpoint
    other = Target("spec.webhooks[0]", "http://127.0.0.1:9/other", "team-a", "webhook", "secret")
    assert other.endpoint != moved.endpoint
    cluster = Target("settings.webhooks[0]", moved.url, "ops", "webhook", "secret")
    assert cluster.endpoint != moved.endpoint


def test_an_empty_status_has_no_events() -> None:
    assert events_of(RecordingStatus()) == []


# webhook_id


def test_the_webhook_id_is_stable() -> None:
    event = Event(STATUS_UPDATE, "history/1")
    assert webhook_id(UID, event) == webhook_id(UID, Event(STATUS_UPDATE, "history/1"))


def test_the_webhook_id_differs_per_event_and_per_recording() -> None:
    ids = {
        webhook_id(UID, Event(STATUS_UPDATE, "history/0")),
        webhook_id(UID, Event(STATUS_UPDATE, "history/1")),
        webhook_id(UID, Event(TRANSFER_UPDATE, "transfers/0")),
        webhook_id("another-uid", Event(STATUS_UPDATE, "history/0")),
    }
    assert len(ids) == 4


def test_the_webhook_id_looks_like_a_standard_webhooks_message_id() -> None:
    msg_id = webhook_id(UID, Event(STATUS_UPDATE, "history/0"))
    assert msg_id.startswith("msg_")
    assert "." not in msg_id  # the signed content is "{id}.{timestamp}.{body}"
    assert len(msg_id) <= 64  # WebhookDelivery.id's limit
    assert UID not in msg_id


# targets_of


def test_targets_are_the_specs_webhooks_then_the_settings_endpoints() -> None:
    settings = WebhookSettings.model_validate(
        {
            "endpoints": [
                {
                    "url": "https://audit.example.com/hook",
                    "secretRef": {"namespace": "tapedeck", "name": "audit", "key": "signing"},
                }
            ]
        }
    )
    targets = targets_of("team-a", _spec(webhooks=2), settings)
    assert targets == [
        Target("spec.webhooks[0]", "http://127.0.0.1:9/hook0", "team-a", "webhook0", "secret"),
        Target("spec.webhooks[1]", "http://127.0.0.1:9/hook1", "team-a", "webhook1", "secret"),
        Target(
            "settings.webhooks[0]", "https://audit.example.com/hook", "tapedeck", "audit", "signing"
        ),
    ]


def test_no_webhooks_means_no_targets() -> None:
    assert targets_of("team-a", _spec(webhooks=0), WebhookSettings()) == []


# due_deliveries

EVENTS = [Event(STATUS_UPDATE, "history/0"), Event(STATUS_UPDATE, "history/1")]
TARGETS = [_target("spec.webhooks[0]"), _target("settings.webhooks[0]")]


def _subjects(attempts: list[Any]) -> list[tuple[str, str]]:
    return [(a.target.name, a.event.subject) for a in attempts]


def test_new_events_are_due_for_every_target_in_event_order() -> None:
    due = due_deliveries(UID, EVENTS, TARGETS, [], T0)
    assert _subjects(due) == [
        ("spec.webhooks[0]", "history/0"),
        ("spec.webhooks[0]", "history/1"),
        ("settings.webhooks[0]", "history/0"),
        ("settings.webhooks[0]", "history/1"),
    ]
    first = due[0].delivery
    assert first.id == webhook_id(UID, EVENTS[0])
    assert first.state is DeliveryState.PENDING
    assert first.attempts == 0
    assert first.event == STATUS_UPDATE
    assert first.target == "spec.webhooks[0]"
    # The same event has the same id at every endpoint.
    assert due[0].delivery.id == due[2].delivery.id


@pytest.mark.parametrize("state", [DeliveryState.DELIVERED, DeliveryState.FAILED])
def test_a_finished_delivery_is_not_due(state: DeliveryState) -> None:
    done = _delivery(state=state, attempts=1)
    due = due_deliveries(UID, EVENTS[:1], TARGETS[:1], [done], T0)
    assert due == []


def test_a_pending_delivery_waiting_for_its_next_try_is_not_due() -> None:
    waiting = _delivery(attempts=1, next_attempt_at=T0 + dt.timedelta(seconds=1))
    assert due_deliveries(UID, EVENTS[:1], TARGETS[:1], [waiting], T0) == []


@pytest.mark.parametrize("ago", [dt.timedelta(0), dt.timedelta(seconds=1)])
def test_a_pending_delivery_whose_time_has_come_is_due(ago: dt.timedelta) -> None:
    waiting = _delivery(
        attempts=3,
        first_attempt_at=T0 - dt.timedelta(minutes=5),
        next_attempt_at=T0 - ago,
        last_status=503,
    )
    [attempt] = due_deliveries(UID, EVENTS[:1], TARGETS[:1], [waiting], T0)
    assert attempt.delivery == waiting
    assert attempt.delivery.attempts == 3
    assert attempt.delivery.id == waiting.id


def test_a_delivery_to_one_target_does_not_count_for_another() -> None:
    done = _delivery(state=DeliveryState.DELIVERED, attempts=1)
    due = due_deliveries(UID, EVENTS[:1], TARGETS, [done], T0)
    assert _subjects(due) == [("settings.webhooks[0]", "history/0")]


# after_attempt


def _first_try(outcome: Delivery, jitter: float = 0, **settings: Any) -> WebhookDelivery:
    return after_attempt(_delivery(), outcome, T0, _settings(**settings), jitter)


def test_a_2xx_is_delivered() -> None:
    for status in (200, 202, 204):
        delivered = _first_try(Delivery(status, None))
        assert delivered.state is DeliveryState.DELIVERED
        assert delivered.delivered_at == T0
        assert delivered.attempts == 1
        assert delivered.last_status == status
        assert delivered.last_error is None
        assert delivered.next_attempt_at is None


def test_a_2xx_after_failures_counts_every_attempt() -> None:
    retried = _delivery(
        attempts=2, first_attempt_at=T0 - dt.timedelta(minutes=1), last_error="HTTP 500"
    )
    delivered = after_attempt(retried, OK, T0, SETTINGS, 0)
    assert delivered.state is DeliveryState.DELIVERED
    assert delivered.attempts == 3
    assert delivered.last_error is None
    assert delivered.first_attempt_at == T0 - dt.timedelta(minutes=1)


@pytest.mark.parametrize(("jitter", "seconds"), [(0, 2.5), (0.999, 4.9975)])
def test_a_500_is_retried_after_the_backoff(jitter: float, seconds: float) -> None:
    retry = _first_try(SERVER_ERROR, jitter)
    assert retry.state is DeliveryState.PENDING
    assert retry.attempts == 1
    assert retry.last_status == 500
    assert retry.last_error == "HTTP 500"
    assert retry.first_attempt_at == T0
    assert retry.next_attempt_at is not None
    delay = (retry.next_attempt_at - T0).total_seconds()
    assert delay == pytest.approx(seconds)
    assert 2.5 <= delay < 5


def test_the_backoff_doubles_after_each_failure() -> None:
    delivery = _delivery()
    now = T0
    delays = []
    for _ in range(4):
        delivery = after_attempt(delivery, SERVER_ERROR, now, SETTINGS, 0)
        assert delivery.next_attempt_at is not None
        delays.append((delivery.next_attempt_at - now).total_seconds())
        now = delivery.next_attempt_at
    assert delays == [2.5, 5, 10, 20]
    assert delivery.attempts == 4
    assert delivery.first_attempt_at == T0


def test_the_second_retry_waits_between_5_and_10_seconds() -> None:
    once = _first_try(SERVER_ERROR)
    for jitter in (0, 0.999):
        twice = after_attempt(once, SERVER_ERROR, T0, SETTINGS, jitter)
        assert twice.next_attempt_at is not None
        assert 5 <= (twice.next_attempt_at - T0).total_seconds() < 10


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_status_that_says_later_is_retried(status: int) -> None:
    retry = _first_try(Delivery(status, f"HTTP {status}"))
    assert retry.state is DeliveryState.PENDING
    assert retry.next_attempt_at is not None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_a_4xx_is_not_retried(status: int) -> None:
    failed = _first_try(Delivery(status, f"HTTP {status}"))
    assert failed.state is DeliveryState.FAILED
    assert failed.next_attempt_at is None
    assert failed.last_status == status
    assert failed.attempts == 1


def test_a_400_is_not_retried() -> None:
    assert _first_try(Delivery(400, "HTTP 400")).state is DeliveryState.FAILED


def test_a_refused_destination_is_not_retried() -> None:
    refused = Delivery(None, "refused http://10.0.0.1/hook: a private address", refused=True)
    failed = _first_try(refused)
    assert failed.state is DeliveryState.FAILED
    assert failed.next_attempt_at is None
    assert failed.last_status is None
    assert failed.last_error is not None
    assert "a private address" in failed.last_error


def test_a_network_error_is_retried() -> None:
    retry = _first_try(Delivery(None, "connection refused"))
    assert retry.state is DeliveryState.PENDING
    assert retry.last_status is None
    assert retry.last_error == "connection refused"
    assert retry.next_attempt_at == T0 + dt.timedelta(seconds=2.5)


def test_a_long_error_is_truncated() -> None:
    retry = _first_try(Delivery(None, "x" * 5000))
    assert retry.last_error == "x" * 1024


def test_a_retry_after_longer_than_the_backoff_is_honoured() -> None:
    retry = _first_try(Delivery(503, "HTTP 503", retry_after=120))
    assert retry.next_attempt_at == T0 + dt.timedelta(seconds=120)


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    retry = _first_try(Delivery(429, "HTTP 429", retry_after=1))
    assert retry.next_attempt_at == T0 + dt.timedelta(seconds=2.5)


def test_a_retry_after_is_capped_by_the_max_backoff() -> None:
    retry = _first_try(Delivery(429, "HTTP 429", retry_after=7200), max_backoff_seconds=600)
    assert retry.next_attempt_at == T0 + dt.timedelta(seconds=600)


def test_the_first_attempt_time_is_kept_across_attempts() -> None:
    once = _first_try(SERVER_ERROR)
    later = T0 + dt.timedelta(minutes=10)
    twice = after_attempt(once, SERVER_ERROR, later, SETTINGS, 0)
    assert twice.first_attempt_at == T0
    assert twice.attempts == 2
    assert twice.next_attempt_at == later + dt.timedelta(seconds=5)


def test_it_gives_up_once_the_next_try_would_leave_the_retry_window() -> None:
    settings = _settings(retry_window_seconds=60)
    inside = _delivery(attempts=3, first_attempt_at=T0 - dt.timedelta(seconds=50))
    # Attempt 4 fails; the next try would be 20 s later, 70 s after the first: outside.
    failed = after_attempt(inside, Delivery(None, "timed out"), T0, settings, 0)
    assert failed.state is DeliveryState.FAILED
    assert failed.attempts == 4
    assert failed.next_attempt_at is None
    assert failed.last_error is not None
    assert "gave up after 4 attempts" in failed.last_error
    assert "timed out" in failed.last_error


def test_it_retries_while_the_next_try_is_inside_the_retry_window() -> None:
    settings = _settings(retry_window_seconds=60)
    inside = _delivery(attempts=3, first_attempt_at=T0 - dt.timedelta(seconds=40))
    retry = after_attempt(inside, SERVER_ERROR, T0, settings, 0)
    assert retry.state is DeliveryState.PENDING
    assert retry.next_attempt_at == T0 + dt.timedelta(seconds=20)


def test_retrying_a_failing_endpoint_ends_within_the_window() -> None:
    delivery = _delivery()
    now = T0
    while delivery.state is DeliveryState.PENDING:
        delivery = after_attempt(delivery, SERVER_ERROR, now, SETTINGS, 0.5)
        if delivery.next_attempt_at is not None:
            assert delivery.next_attempt_at - T0 <= dt.timedelta(days=1)
            now = delivery.next_attempt_at
    assert delivery.state is DeliveryState.FAILED
    assert delivery.last_error is not None
    assert delivery.last_error.startswith(f"gave up after {delivery.attempts} attempts")
    assert 20 < delivery.attempts < 60


# next_attempt_at


def test_the_next_attempt_is_the_earliest_pending_one() -> None:
    deliveries = [
        _delivery(next_attempt_at=T0 + dt.timedelta(minutes=5)),
        _delivery(next_attempt_at=T0 + dt.timedelta(minutes=2)),
        _delivery(state=DeliveryState.DELIVERED, next_attempt_at=T0),
        _delivery(state=DeliveryState.FAILED, next_attempt_at=T0 + dt.timedelta(minutes=1)),
        _delivery(),  # pending, not tried yet: due now, nothing to wait for
    ]
    assert next_attempt_at(deliveries) == T0 + dt.timedelta(minutes=2)


def test_nothing_to_wait_for_when_every_delivery_is_finished() -> None:
    deliveries = [
        _delivery(state=DeliveryState.DELIVERED),
        _delivery(state=DeliveryState.FAILED, next_attempt_at=T0),
    ]
    assert next_attempt_at(deliveries) is None
    assert next_attempt_at([]) is None
