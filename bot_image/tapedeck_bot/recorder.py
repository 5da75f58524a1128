"""Run one recording: join the meeting, feed the composite and track pipelines, decide when
to stop. Both pipelines read the same decoded frames from one router."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tapedeck_bot.composite.encoder import CONTENT_TYPES, EncoderSettings
from tapedeck_bot.composite.pipeline import CompositePipeline
from tapedeck_bot.contract import Layout, Output, Participant, StopReason, TracksSpec
from tapedeck_bot.control import RecordingControl
from tapedeck_bot.media.router import MediaRouter
from tapedeck_bot.media.writer import OpenWriter
from tapedeck_bot.meeting import MeetingConnector, MeetingError
from tapedeck_bot.tracks.recorder import TrackPipeline, TrackRecorder

__all__ = ["CompositeJob", "Progress", "Recorder", "RecordingResult", "TracksJob"]

log = logging.getLogger("tapedeck_bot.recorder")

_CHECK_S = 0.1
_NAME_LIMIT = 256


@dataclass(frozen=True)
class CompositeJob:
    settings: EncoderSettings
    layout: Layout
    name: str  # the object key / file name of the composite
    open_writer: OpenWriter


@dataclass(frozen=True)
class TracksJob:
    spec: TracksSpec
    prefix: str | None
    open_writer: OpenWriter


@dataclass(frozen=True)
class Progress:
    participants: int  # present now
    recorded_s: float
    bytes_written: int
    paused: bool
    roster: tuple[Participant, ...] = ()  # everyone seen, in join order, with UTC times


@dataclass(frozen=True)
class RecordingResult:
    stop_reason: StopReason
    recorded_s: float
    outputs: list[Output]
    error: str | None = None


class _Pipeline(Protocol):
    done: threading.Event
    error: BaseException | None

    @property
    def bytes_written(self) -> int: ...

    def start(self) -> None: ...


class Recorder:
    def __init__(
        self,
        connector: MeetingConnector,
        *,
        composite: CompositeJob | None = None,
        tracks: TracksJob | None = None,
        max_seconds: float = 86400,
        idle_timeout_s: float = 60,
        on_progress: Callable[[Progress], None] | None = None,
        on_started: Callable[[dt.datetime], None] | None = None,
        progress_every_s: float = 1.0,
    ) -> None:
        if composite is None and tracks is None:
            raise ValueError("nothing to record: enable the composite or tracks")
        self.connector, self.composite, self.tracks = connector, composite, tracks
        self.control = RecordingControl(max_seconds=max_seconds, idle_timeout_s=idle_timeout_s)
        self.on_progress = on_progress
        self.on_started = on_started
        self.progress_every_s = progress_every_s
        self.t0: float | None = None

    def _now(self) -> float:
        assert self.t0 is not None
        return time.monotonic() - self.t0

    def pause(self) -> None:
        if self.t0 is not None:
            self.control.pause(self._now())

    def resume(self) -> None:
        if self.t0 is not None:
            self.control.resume(self._now())

    def stop(self, reason: StopReason = StopReason.STOPPED) -> None:
        if self.t0 is not None:
            self.control.stop(self._now(), reason)

    async def run(self) -> RecordingResult:
        """Join (errors such as a wrong room raise before anything is written), record, stop."""
        await self.connector.join()
        self.t0, wall_t0 = time.monotonic(), time.time()
        router = MediaRouter(self.t0, buffers=self.composite is not None)
        pipelines: list[_Pipeline] = []
        composite: CompositePipeline | None = None
        if self.composite is not None:
            job = self.composite
            composite_output = Output(
                kind="composite",
                key=job.name,
                content_type=CONTENT_TYPES[job.settings.video_codec],
                started_at=dt.datetime.fromtimestamp(wall_t0, dt.UTC),
            )
            composite = CompositePipeline(
                router, self.control, job.open_writer(composite_output), job.settings, job.layout
            )
            pipelines.append(composite)
        track_recorder: TrackRecorder | None = None
        if self.tracks is not None:
            track_recorder = TrackRecorder(
                self.tracks.spec, self.tracks.prefix, self.tracks.open_writer, self.control, wall_t0
            )
            router.listeners.append(track_recorder)
            pipelines.append(TrackPipeline(router, self.control, track_recorder))
        meeting = asyncio.create_task(self.connector.run(router))
        for pipeline in pipelines:
            pipeline.start()
        log.info("recording started", extra={"started_at": wall_t0})
        if self.on_started is not None:
            self.on_started(dt.datetime.fromtimestamp(wall_t0, dt.UTC))
        error = await self._supervise(router, pipelines, meeting, wall_t0)
        for pipeline in pipelines:
            await asyncio.to_thread(pipeline.done.wait)
            if pipeline.error is not None and error is None:
                error = f"encoder failed: {pipeline.error}"
        if router.listener_errors and error is None:
            error = "; ".join(router.listener_errors)
        await self.connector.leave()
        meeting.cancel()
        with contextlib.suppress(asyncio.CancelledError, MeetingError):
            await meeting
        outputs = track_recorder.outputs() if track_recorder else []
        if composite is not None:
            written = {"bytes": composite.bytes_written, "complete": composite.error is None}
            outputs.insert(0, composite_output.model_copy(update=written))
        result = RecordingResult(
            stop_reason=self.control.stop_reason or StopReason.ERROR,
            recorded_s=self.control.recorded(self.control.stop_at or self._now()),
            outputs=outputs,
            error=error,
        )
        log.info(
            "recording finished",
            extra={"stop_reason": result.stop_reason, "recorded_s": round(result.recorded_s, 2)},
        )
        return result

    async def _supervise(
        self,
        router: MediaRouter,
        pipelines: list[_Pipeline],
        meeting: asyncio.Task[None],
        wall_t0: float,
    ) -> str | None:
        error: str | None = None
        last_progress = 0.0
        while self.control.stop_at is None:
            now = self._now()
            present = len(router.present_at(now))
            self.control.room_occupancy(now, present)
            self.control.check(now)
            if meeting.done() and error is None:
                exc = meeting.exception()
                error = f"meeting failed: {exc}" if exc else "meeting ended"
                self.control.stop(now, StopReason.ERROR)
            if any(p.done.is_set() for p in pipelines):
                self.control.stop(now, StopReason.ERROR)
            if self.on_progress and now - last_progress >= self.progress_every_s:
                last_progress = now
                self.on_progress(
                    Progress(
                        participants=present,
                        recorded_s=self.control.recorded(now),
                        bytes_written=sum(p.bytes_written for p in pipelines),
                        paused=self.control.paused,
                        roster=_roster(router, wall_t0),
                    )
                )
            await asyncio.sleep(_CHECK_S)
        return error


def _roster(router: MediaRouter, wall_t0: float) -> tuple[Participant, ...]:
    def utc(media_s: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(wall_t0 + media_s, dt.UTC)

    # Names come from whoever joins the meeting: cut to what the status schema takes.
    return tuple(
        Participant(
            user_id=m.info.user_id[:_NAME_LIMIT],
            display_name=m.info.display_name[:_NAME_LIMIT] if m.info.display_name else None,
            joined_at=utc(m.joined_at),
            left_at=utc(m.left_at) if m.left_at is not None else None,
        )
        for m in router.snapshot()
    )
