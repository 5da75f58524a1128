"""The recorder with an in-memory meeting on fake time: why and when it stops, what it
reports, and how a failing meeting or stage ends it. Its stages run on their threads, on
the fake clock."""

from __future__ import annotations

import asyncio

import pytest

from tapedeck_bot.composite.encoder import EncoderSettings
from tapedeck_bot.contract import AudioCodec, Layout, Output, StopReason, TracksSpec, VideoCodec
from tapedeck_bot.meeting import MeetingNotFound
from tapedeck_bot.recorder import CompositeJob, Progress, Recorder, RecordingResult, TracksJob
from tests.unit.pipeline_fakes import BytesWriter, FakeClock, Person, ScriptedMeeting

SETTINGS = EncoderSettings(VideoCodec.H264, AudioCodec.AAC, 160, 96, 10, 2)


class Files:
    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after
        self.writers: dict[str, BytesWriter] = {}

    def open(self, output: Output) -> BytesWriter:
        self.writers[output.key] = writer = BytesWriter(self.fail_after)
        return writer


def _record(
    people: list[Person],
    *,
    composite: bool = False,
    files: Files | None = None,
    during: list[tuple[float, str]] = (),  # type: ignore[assignment]
    **kwargs: object,
) -> tuple[RecordingResult, Files, list[Progress]]:
    clock = FakeClock(driven_by_sleep=True)
    max_seconds = float(kwargs.pop("max_seconds", 3600))  # type: ignore[arg-type]
    files = files or Files()
    progress: list[Progress] = []
    recorder = Recorder(
        ScriptedMeeting(clock, people, decoded=composite, **kwargs),  # type: ignore[arg-type]
        composite=CompositeJob(SETTINGS, Layout.GRID, "c.mp4", files.open) if composite else None,
        tracks=TracksJob(TracksSpec(enabled=True), None, files.open),
        max_seconds=max_seconds,
        idle_timeout_s=5,
        on_progress=progress.append,
        clock=clock,
    )

    async def control() -> None:
        for at, action in during:
            while recorder.t0 is None or clock.monotonic() - recorder.t0 < at:
                await clock.sleep(0.01)
            getattr(recorder, action)()

    async def main() -> RecordingResult:
        task = asyncio.create_task(control())
        result = await recorder.run()
        task.cancel()
        return result

    return asyncio.run(main()), files, progress


def test_max_seconds_stops_exactly_at_the_limit_and_closes_every_file() -> None:
    result, files, progress = _record(
        [Person("alice", 440), Person("bob", 660, joins=1.0)], composite=True, max_seconds=3
    )
    assert result.stop_reason is StopReason.MAX_SECONDS
    assert result.recorded_s == pytest.approx(3.0)
    assert result.error is None
    assert [o.kind for o in result.outputs] == ["composite", "track", "track"]
    assert all(o.complete and o.bytes for o in result.outputs)
    assert all(w.closed for w in files.writers.values())
    assert max(p.participants for p in progress) == 2
    assert [p.user_id for p in progress[-1].roster] == ["alice", "bob"]


def test_an_empty_room_stops_after_the_idle_timeout() -> None:
    result, _, _ = _record([Person("alice", 440, leaves=2.0)])
    assert result.stop_reason is StopReason.ALL_PEERS_LEFT
    assert result.recorded_s == pytest.approx(7.0, abs=0.25)  # left at 2 s, idle 5 s


def test_a_leave_dated_back_counts_the_idle_timeout_from_its_date() -> None:
    # A WHEP stream went quiet at 2 s; the connector tells of the leave at 4 s.
    result, _, progress = _record([Person("alice", 440, leaves=2.0, leave_told=4.0)])
    assert result.stop_reason is StopReason.ALL_PEERS_LEFT
    assert result.recorded_s == pytest.approx(7.0, abs=0.25)  # 2 s + idle 5 s, not 4 + 5
    (alice,) = progress[-1].roster
    assert alice.left_at is not None
    assert (alice.left_at - alice.joined_at).total_seconds() == pytest.approx(2.0, abs=0.05)


def test_a_media_gap_keeps_the_participant_and_is_reported() -> None:
    result, _, progress = _record([Person("alice", 440, lost=(1.0, 2.5))], max_seconds=4)
    assert result.stop_reason is StopReason.MAX_SECONDS
    assert max(p.participants for p in progress) == min(p.participants for p in progress) == 1
    (alice,) = progress[-1].roster
    assert alice.left_at is None
    (gap,) = alice.gaps
    assert gap.ended_at is not None
    assert (gap.started_at - alice.joined_at).total_seconds() == pytest.approx(1.0, abs=0.05)
    assert (gap.ended_at - gap.started_at).total_seconds() == pytest.approx(1.5, abs=0.05)


def test_a_participant_lost_until_they_leave_has_left_not_a_gap() -> None:
    result, _, progress = _record(
        [Person("alice", 440, lost=(1.0, 9.0), leaves=1.0, leave_told=4.0)]
    )
    assert result.stop_reason is StopReason.ALL_PEERS_LEFT
    (alice,) = progress[-1].roster
    assert alice.left_at is not None
    assert alice.gaps == []


def test_pause_and_stop_are_counted_on_the_media_clock() -> None:
    result, _, _ = _record(
        [Person("alice", 440)], during=[(1.0, "pause"), (3.0, "resume"), (4.0, "stop")]
    )
    assert result.stop_reason is StopReason.STOPPED
    assert result.recorded_s == pytest.approx(2.0, abs=0.25)


def test_a_wrong_room_raises_before_anything_is_written() -> None:
    files = Files()
    with pytest.raises(MeetingNotFound):
        _record([Person("alice", 440)], files=files, join_error=MeetingNotFound("no room"))
    assert files.writers == {}


def test_a_lost_meeting_stops_with_an_error_and_keeps_what_was_recorded() -> None:
    result, _, _ = _record([Person("alice", 440)], fail_at=2.0)
    assert result.stop_reason is StopReason.ERROR
    assert result.error == "meeting failed: the SFU went away"
    assert result.outputs[0].complete


def test_a_failing_stage_is_named_in_the_error_and_every_file_is_closed() -> None:
    files = Files(fail_after=2000)
    result, _, _ = _record([Person("alice", 440), Person("bob", 660)], files=files, composite=True)
    assert result.stop_reason is StopReason.ERROR
    assert result.error is not None
    assert result.error.startswith("composite failed: [Errno 28] No space left on device")
    assert len(files.writers) == 3
    assert all(w.closed for w in files.writers.values())
