"""After the upload: when download URLs are renewed, how transfers are retried, and when the
outputs expire. Pure policy, no store and no cluster."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import ValidationError

from tapedeck_bot.contract import (
    Download,
    Output,
    Phase,
    RecordingSpec,
    RecordingStatus,
    StopReason,
    StorageSpec,
    TransferState,
    TransferStatus,
    Transition,
)
from tapedeck_bot.storage import PresignedUrl, TransferResult
from tapedeck_operator.config import (
    DownloadSettings,
    OperatorSettings,
    RetentionSettings,
    TransferSettings,
)
from tapedeck_operator.downloads import download_fields, renew_at
from tapedeck_operator.retention import Tombstone, due_tombstones, expires_at, retention_days
from tapedeck_operator.transfers import (
    destination_name,
    due_transfers,
    finished,
    started,
    transfer_entries,
)

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
S3_COPY: dict[str, Any] = {
    "type": "s3",
    "region": "us-east-1",
    "endpoint": "http://127.0.0.1:8333",
    "bucket": "copies",
    "secretRef": {"name": "s3"},
}
R2_COPY: dict[str, Any] = {
    "type": "r2",
    "accountId": "0123456789abcdef0123456789abcdef",
    "bucket": "archive",
    "path": "team-a/recordings",
    "secretRef": {"name": "r2-credentials"},
}


def _spec(**changes: Any) -> RecordingSpec:
    return RecordingSpec.model_validate(
        {
            "meeting": {"id": "m1", "janus": {"url": "http://127.0.0.1:8088/janus", "room": 1234}},
            **changes,
        }
    )


COMPOSITE = Output(
    kind="composite", key="rec/uid/composite.mp4", content_type="video/mp4", bytes=1000
)
SEGMENT = Output(
    kind="composite",
    key="rec/uid/composite.part1.mp4",
    content_type="video/mp4",
    bytes=10,
    salvaged=True,
)
TRACK = Output(
    kind="track", key="rec/uid/tracks/alice.webm", content_type="audio/webm", user_id="alice"
)


def _download(output: Output, expires_at: dt.datetime) -> Download:
    return Download(
        key=output.key,
        kind=output.kind,
        user_id=output.user_id,
        bytes=output.bytes,
        salvaged=output.salvaged,
        url=f"https://store/{output.key}",
        expires_at=expires_at,
    )


def _history(*phases: Phase) -> list[Transition]:
    return [Transition(phase=p, at=T0 + dt.timedelta(minutes=i)) for i, p in enumerate(phases)]


UPLOADED = _history(Phase.INVOKED, Phase.RECORDING, Phase.UPLOADING, Phase.UPLOADED)


def _uploaded(**changes: Any) -> RecordingStatus:
    fields: dict[str, Any] = {
        "phase": Phase.UPLOADED,
        "history": UPLOADED,
        "outputs": [COMPOSITE, SEGMENT, TRACK],
        "stop_reason": StopReason.STOPPED,
    }
    return RecordingStatus(**(fields | changes))


# Downloads: renew_at

DOWNLOADS = DownloadSettings(expiry_seconds=7 * 86_400, renew_before_seconds=86_400)


@pytest.mark.parametrize(
    "phase", [Phase.INVOKED, Phase.RECORDING, Phase.PAUSED, Phase.UPLOADING, Phase.ERRORED]
)
def test_no_urls_are_issued_before_the_upload(phase: Phase) -> None:
    assert renew_at(_uploaded(phase=phase), DOWNLOADS) is None


def test_no_urls_are_issued_once_the_outputs_expired() -> None:
    assert renew_at(_uploaded(expired=True), DOWNLOADS) is None


def test_no_urls_are_issued_without_outputs() -> None:
    assert renew_at(_uploaded(outputs=[]), DOWNLOADS) is None


def test_urls_are_due_at_once_when_an_output_has_none() -> None:
    signed = [_download(COMPOSITE, T0 + 7 * DAY), _download(TRACK, T0 + 7 * DAY)]
    due = renew_at(_uploaded(downloads=signed), DOWNLOADS)  # the salvaged segment has none
    assert due is not None
    assert due < T0
    assert renew_at(_uploaded(), DOWNLOADS) == due


def test_urls_are_renewed_ahead_of_the_first_expiry() -> None:
    signed = [
        _download(COMPOSITE, T0 + 7 * DAY),
        _download(SEGMENT, T0 + 6 * DAY),
        _download(TRACK, T0 + 7 * DAY),
    ]
    assert renew_at(_uploaded(downloads=signed), DOWNLOADS) == T0 + 5 * DAY


def test_urls_are_renewed_at_half_their_life_at_the_latest() -> None:
    short = DownloadSettings(expiry_seconds=3600, renew_before_seconds=86_400)
    assert short.renew_before == 1800
    signed = [_download(o, T0 + dt.timedelta(hours=1)) for o in (COMPOSITE, SEGMENT, TRACK)]
    assert renew_at(_uploaded(downloads=signed), short) == T0 + dt.timedelta(minutes=30)


def test_renew_before_is_the_setting_when_it_is_under_half_the_expiry() -> None:
    assert DownloadSettings(expiry_seconds=7200, renew_before_seconds=600).renew_before == 600
    assert DownloadSettings().renew_before == 86_400


def test_a_url_longer_than_7_days_is_rejected() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 604800"):
        DownloadSettings(expiry_seconds=8 * 86_400)
    with pytest.raises(ValidationError):
        OperatorSettings.model_validate({"downloads": {"expirySeconds": 8 * 86_400}})


# Downloads: download_fields


def _presigned(*outputs: Output) -> dict[str, PresignedUrl]:
    return {
        o.key: PresignedUrl(url=f"https://store/{o.key}?sig", expires_at=T0 + 7 * DAY)
        for o in outputs
    }


def test_download_fields_list_every_output_and_the_composite_url() -> None:
    fields = download_fields(_uploaded(), _presigned(COMPOSITE, SEGMENT, TRACK))
    assert [d["key"] for d in fields["downloads"]] == [COMPOSITE.key, SEGMENT.key, TRACK.key]
    segment = fields["downloads"][1]
    assert segment["salvaged"] is True
    assert segment["url"] == f"https://store/{SEGMENT.key}?sig"
    track = fields["downloads"][2]
    assert track["userId"] == "alice"
    assert track["kind"] == "track"
    assert fields["downloadUrl"] == f"https://store/{COMPOSITE.key}?sig"
    assert dt.datetime.fromisoformat(fields["downloadUrlExpiry"]) == T0 + 7 * DAY
    # The fields are a status patch: they must validate as the status they patch.
    patched = RecordingStatus.model_validate(fields)
    assert patched.download_url == fields["downloadUrl"]
    assert [d.key for d in patched.downloads] == [COMPOSITE.key, SEGMENT.key, TRACK.key]
    json.dumps(fields)


def test_the_composite_url_is_the_whole_ones_not_a_salvaged_segments() -> None:
    status = _uploaded(outputs=[SEGMENT, COMPOSITE])
    fields = download_fields(status, _presigned(SEGMENT, COMPOSITE))
    assert fields["downloadUrl"] == f"https://store/{COMPOSITE.key}?sig"


def test_a_tracks_only_recording_has_no_download_url() -> None:
    fields = download_fields(_uploaded(outputs=[TRACK]), _presigned(TRACK))
    assert fields["downloadUrl"] is None
    assert fields["downloadUrlExpiry"] is None
    assert [d["userId"] for d in fields["downloads"]] == ["alice"]


# Transfers

TRANSFERS = TransferSettings(max_attempts=3, initial_backoff_seconds=30, max_backoff_seconds=1800)


def test_a_destination_is_named_without_credentials() -> None:
    # The spec only names the Secret; neither its name nor its keys belong in the status.
    spec = StorageSpec.model_validate(S3_COPY | {"secretRef": {"name": "copy-credentials"}})
    name = destination_name(spec)
    assert name == "s3 http://127.0.0.1:8333 copies"
    assert "copy-credentials" not in name
    for secret_key in ("accessKeyId", "secretAccessKey", "secret"):
        assert secret_key.lower() not in name.lower()


def test_a_destination_name_has_the_path() -> None:
    name = destination_name(StorageSpec.model_validate(R2_COPY))
    assert name == "r2 0123456789abcdef0123456789abcdef archive/team-a/recordings"
    assert "r2-credentials" not in name


def test_an_endpoint_carrying_credentials_is_refused_so_no_name_can_show_them() -> None:
    with pytest.raises(ValidationError, match="endpoint"):
        StorageSpec.model_validate(
            S3_COPY | {"endpoint": "https://AKIAEXAMPLE:wJalrXUtnFEMI@s3.example.com"}
        )


def test_transfer_entries_keep_existing_ones_by_destination_and_add_pending_ones() -> None:
    destinations = [StorageSpec.model_validate(S3_COPY), StorageSpec.model_validate(R2_COPY)]
    existing = TransferStatus(
        index=3,  # where it was before the list was edited
        destination=destination_name(destinations[0]),
        state=TransferState.SUCCEEDED,
        attempts=2,
        bytes=5,
    )
    entries = transfer_entries(destinations, [existing])
    assert entries[0] == existing.model_copy(update={"index": 0})
    assert entries[1] == TransferStatus(
        index=1, destination=destination_name(destinations[1]), state=TransferState.PENDING
    )
    assert entries[1].attempts == 0
    assert "r2-credentials" not in entries[1].destination


def test_a_destination_listed_twice_is_copied_once() -> None:
    twice = [StorageSpec.model_validate(S3_COPY)] * 2
    assert [e.index for e in transfer_entries(twice, [])] == [0]


def test_transfer_entries_for_a_new_recording_are_all_pending() -> None:
    spec = _spec(transfers=[S3_COPY, R2_COPY])
    entries = transfer_entries(spec.transfers, [])
    assert [(e.index, e.state) for e in entries] == [
        (0, TransferState.PENDING),
        (1, TransferState.PENDING),
    ]
    assert transfer_entries([], []) == []


def _entry(index: int, **changes: Any) -> TransferStatus:
    return TransferStatus(index=index, destination=f"s3 us-east-1 copies{index}", **changes)


def test_due_transfers_start_pending_ones_whose_time_has_come() -> None:
    entries = [
        _entry(0),  # never tried
        _entry(1, attempts=1, next_attempt_at=T0 - dt.timedelta(seconds=1)),
        _entry(2, attempts=1, next_attempt_at=T0),
        _entry(3, attempts=1, next_attempt_at=T0 + dt.timedelta(seconds=1)),
        _entry(4, state=TransferState.SUCCEEDED, attempts=1),
        _entry(5, state=TransferState.FAILED, attempts=3),
    ]
    assert due_transfers(entries, running=set(), now=T0) == [e.destination for e in entries[:3]]


def test_due_transfers_skip_running_ones() -> None:
    entries = [_entry(0), _entry(1, state=TransferState.COPYING, attempts=1)]
    names = [e.destination for e in entries]
    assert due_transfers(entries, running=set(names), now=T0) == []
    assert due_transfers(entries, running={names[1]}, now=T0) == [names[0]]


def test_a_copy_left_by_a_dead_operator_is_started_again() -> None:
    entries = [_entry(0, state=TransferState.COPYING, attempts=1)]
    assert due_transfers(entries, running=set(), now=T0) == [entries[0].destination]


def test_starting_a_transfer_counts_the_attempt() -> None:
    entry = _entry(0, attempts=1, error="timed out", next_attempt_at=T0)
    copying = started(entry)
    assert copying.state is TransferState.COPYING
    assert copying.attempts == 2
    assert copying.error is None


def test_a_successful_copy_succeeds_with_its_counts() -> None:
    entry = started(_entry(0))
    result = TransferResult(destination=entry.destination, keys=("a.mp4", "b.webm"), bytes=1234)
    done = finished(entry, result, T0, TRANSFERS, 0)
    assert done.state is TransferState.SUCCEEDED
    assert done.bytes == 1234
    assert done.objects == 2
    assert done.finished_at == T0
    assert done.next_attempt_at is None
    assert done.error is None
    assert done.attempts == 1


def test_a_failed_copy_is_retried_later_while_attempts_remain() -> None:
    entry = started(_entry(0))
    result = TransferResult(
        destination=entry.destination, keys=("a.mp4",), bytes=10, error="AccessDenied"
    )
    retry = finished(entry, result, T0, TRANSFERS, 0)
    assert retry.state is TransferState.PENDING
    assert retry.error == "AccessDenied"
    assert retry.next_attempt_at == T0 + dt.timedelta(seconds=15)
    assert retry.finished_at is None
    assert retry.bytes == 10
    assert retry.objects == 1
    again = finished(started(retry), result, T0, TRANSFERS, 0.999)
    assert again.state is TransferState.PENDING
    assert again.next_attempt_at is not None
    assert 30 <= (again.next_attempt_at - T0).total_seconds() < 60


def test_a_failed_copy_fails_for_good_at_max_attempts() -> None:
    entry = started(_entry(0, attempts=TRANSFERS.max_attempts - 1))
    assert entry.attempts == TRANSFERS.max_attempts
    result = TransferResult(destination=entry.destination, keys=(), bytes=0, error="x" * 2000)
    failed = finished(entry, result, T0, TRANSFERS, 0)
    assert failed.state is TransferState.FAILED
    assert failed.error == "x" * 1024
    assert failed.finished_at == T0
    assert failed.next_attempt_at is None


def test_a_transfer_is_tried_max_attempts_times() -> None:
    entry = _entry(0)
    now = T0
    tries = 0
    while entry.state is not TransferState.FAILED:
        assert due_transfers([entry], running=set(), now=now) == [entry.destination]
        entry = started(entry)
        tries += 1
        result = TransferResult(destination=entry.destination, keys=(), bytes=0, error="boom")
        entry = finished(entry, result, now, TRANSFERS, 0.5)
        if entry.next_attempt_at is not None:
            assert due_transfers([entry], running=set(), now=now) == []
            now = entry.next_attempt_at
    assert tries == TRANSFERS.max_attempts


# Retention

RETENTION = RetentionSettings(days=7)


def test_retention_days_come_from_the_spec() -> None:
    assert retention_days(_spec(retentionDays=30), RETENTION) == 30


def test_retention_days_default_to_the_settings() -> None:
    assert retention_days(_spec(), RETENTION) == 7
    assert retention_days(_spec(), RetentionSettings(days=90)) == 90


@pytest.mark.parametrize(
    "history",
    [
        [],
        _history(Phase.INVOKED),
        _history(Phase.INVOKED, Phase.RECORDING),
        _history(Phase.INVOKED, Phase.RECORDING, Phase.PAUSED),
        _history(Phase.INVOKED, Phase.RECORDING, Phase.UPLOADING),
    ],
    ids=["new", "invoked", "recording", "paused", "uploading"],
)
def test_nothing_expires_while_the_recording_goes_on(history: list[Transition]) -> None:
    assert expires_at(_spec(), RecordingStatus(history=history), RETENTION) is None


def test_an_uploaded_recording_expires_days_after_it_was_uploaded() -> None:
    status = RecordingStatus(history=UPLOADED)
    uploaded_at = UPLOADED[-1].at
    assert expires_at(_spec(), status, RETENTION) == uploaded_at + 7 * DAY
    assert expires_at(_spec(retentionDays=1), status, RETENTION) == uploaded_at + DAY


def test_an_errored_recording_expires_days_after_it_failed() -> None:
    history = _history(Phase.INVOKED, Phase.RECORDING, Phase.ERRORED)
    status = RecordingStatus(history=history)
    assert expires_at(_spec(), status, RETENTION) == T0 + dt.timedelta(minutes=2) + 7 * DAY


def _tombstone(due_at: dt.datetime) -> str:
    return Tombstone(
        namespace="team-a",
        name="standup",
        storage=StorageSpec.model_validate(S3_COPY),
        prefix="recordings/uid/",
        due_at=due_at,
    ).model_dump_json(by_alias=True, exclude_none=True)


def test_due_tombstones_are_the_ones_whose_time_has_come() -> None:
    data = {
        "uid-past": _tombstone(T0 - DAY),
        "uid-now": _tombstone(T0),
        "uid-future": _tombstone(T0 + dt.timedelta(seconds=1)),
    }
    due, unreadable = due_tombstones(data, T0)
    assert [uid for uid, _ in due] == ["uid-past", "uid-now"]
    assert unreadable == []
    tombstone = dict(due)["uid-past"]
    assert (tombstone.namespace, tombstone.name) == ("team-a", "standup")
    assert tombstone.prefix == "recordings/uid/"
    assert tombstone.storage.bucket == "copies"
    assert tombstone.due_at == T0 - DAY


def test_keys_that_are_not_tombstones_are_reported() -> None:
    data = {
        "uid-past": _tombstone(T0 - DAY),
        "not-json": "{",
        "not-a-tombstone": json.dumps({"hello": "world"}),
        "empty": "",
    }
    due, unreadable = due_tombstones(data, T0)
    assert [uid for uid, _ in due] == ["uid-past"]
    assert sorted(unreadable) == ["empty", "not-a-tombstone", "not-json"]


def test_no_tombstones_nothing_due() -> None:
    assert due_tombstones({}, T0) == ([], [])


def test_a_tombstone_without_a_time_zone_is_reported_not_fatal() -> None:
    naive = json.loads(_tombstone(T0 - DAY))
    naive["dueAt"] = "2026-03-01T10:00:00"
    data = {"uid-naive": json.dumps(naive), "uid-past": _tombstone(T0 - DAY)}
    due, unreadable = due_tombstones(data, T0)
    assert [uid for uid, _ in due] == ["uid-past"]
    assert unreadable == ["uid-naive"]
