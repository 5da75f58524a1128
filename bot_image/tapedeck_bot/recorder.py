"""Run one recording: join the meeting, run the pipeline's stages, decide when to stop.

The stages, each on its own thread and each the only owner of what it works on::

    network (asyncio)  --inbox-->  placement  --mailbox-->  composite
                                              --mailbox-->  tracks

The network thread only hands frames over (`MediaRouter`); the placement stage owns the
media clock and fans placed frames out; the composite and the tracks encode and write.
Control changes reach the stages as immutable `ControlState` snapshots.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from tapedeck_bot.clock import SYSTEM_CLOCK, Clock
from tapedeck_bot.composite.encoder import EncoderSettings
from tapedeck_bot.composite.pipeline import CompositePipeline
from tapedeck_bot.contract import (
    STREAM_KINDS,
    Layout,
    Output,
    Participant,
    StopReason,
    StreamKind,
    TracksSpec,
    content_type_of,
)
from tapedeck_bot.control import ControlState, RecordingControl
from tapedeck_bot.media.events import StageEvent
from tapedeck_bot.media.mailbox import Mailbox
from tapedeck_bot.media.placement import Outlet, Placement
from tapedeck_bot.media.router import MediaRouter, PlacementInbox
from tapedeck_bot.media.worker import Stage
from tapedeck_bot.media.writer import OpenWriter
from tapedeck_bot.meeting import MeetingConnector
from tapedeck_bot.tracks.recorder import TrackRecorder

__all__ = [
    "CompositeJob",
    "MediaWanted",
    "Progress",
    "Recorder",
    "RecordingResult",
    "TracksJob",
    "media_wanted",
]

log = logging.getLogger("tapedeck_bot.recorder")

_CHECK_S = 0.1
_NAME_LIMIT = 256
# Hand-over limits, in frames: seconds of media for a room of a dozen, far beyond what a
# stage that keeps up ever holds.
_INBOX_LIMIT = 4000
_MAILBOX_LIMIT = 4000


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
class MediaWanted:
    """Which streams the connector delivers decoded, and which as sent."""

    decoded: frozenset[StreamKind]
    encoded: frozenset[StreamKind]


def media_wanted(composite: bool, tracks: TracksSpec | None) -> MediaWanted:
    """The composite mixes and lays out decoded media. Tracks keep Opus and VP8 as sent;
    video of other codecs (H.264) is decoded to be re-encoded to VP8 for WebM."""
    decoded: set[StreamKind] = {"audio", "video"} if composite else set()
    encoded: set[StreamKind] = set()
    if tracks is not None:
        encoded |= STREAM_KINDS[tracks.media_kind]
        decoded |= STREAM_KINDS[tracks.media_kind] & {"video"}
    return MediaWanted(frozenset(decoded), frozenset(encoded))


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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if composite is None and tracks is None:
            raise ValueError("nothing to record: enable the composite or tracks")
        self.connector, self.composite, self.tracks = connector, composite, tracks
        self.control = RecordingControl(max_seconds=max_seconds, idle_timeout_s=idle_timeout_s)
        self.on_progress = on_progress
        self.on_started = on_started
        self.progress_every_s = progress_every_s
        self.clock = clock
        self.t0: float | None = None

    def _now(self) -> float:
        assert self.t0 is not None
        return self.clock.monotonic() - self.t0

    # Called on the asyncio thread (signal handlers, the spec watcher).
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
        self.t0, wall_t0 = self.clock.monotonic(), self.clock.time()
        started = dt.datetime.fromtimestamp(wall_t0, dt.UTC)
        inbox: PlacementInbox = Mailbox(_INBOX_LIMIT)
        router = MediaRouter(self.t0, inbox)
        outlets: list[Outlet] = []
        stages: list[Stage] = []
        composite: CompositePipeline | None = None
        composite_output: Output | None = None
        if self.composite is not None:
            job = self.composite
            composite_output = Output(
                kind="composite",
                key=job.name,
                content_type=content_type_of(job.name),
                started_at=started,
            )
            mailbox: Mailbox[StageEvent] = Mailbox(_MAILBOX_LIMIT)
            outlets.append(Outlet(mailbox, decoded=media_wanted(True, None).decoded))
            composite = CompositePipeline(
                self.t0,
                mailbox,
                self._control_state,
                job.open_writer(composite_output),
                job.settings,
                job.layout,
                self.clock,
            )
            stages.append(composite)
        tracks: TrackRecorder | None = None
        if self.tracks is not None:
            mailbox = Mailbox(_MAILBOX_LIMIT)
            wanted = media_wanted(False, self.tracks.spec)
            outlets.append(Outlet(mailbox, decoded=wanted.decoded, encoded=wanted.encoded))
            tracks = TrackRecorder(
                self.tracks.spec,
                self.tracks.prefix,
                self.tracks.open_writer,
                mailbox,
                self._control_state,
                wall_t0,
                self.clock,
            )
            stages.append(tracks)
        placement = Placement(self.t0, inbox, outlets, self._control_state, self.clock)
        stages.insert(0, placement)
        meeting = asyncio.create_task(self.connector.run(router))
        for stage in stages:
            stage.start()
        log.info("recording started", extra={"started_at": wall_t0})
        if self.on_started is not None:
            self.on_started(started)
        writers: list[CompositePipeline | TrackRecorder] = [s for s in (composite, tracks) if s]
        error = await self._supervise(router, stages, writers, meeting, wall_t0)
        for stage in stages:
            while not stage.done.is_set():  # on the clock, so that fake time moves on too
                await self.clock.sleep(_CHECK_S)
            if stage.error is not None and error is None:
                error = f"{stage.name} failed: {stage.error}"
        await self.connector.leave()
        meeting.cancel()
        await asyncio.gather(meeting, return_exceptions=True)  # its failure is in `error`
        dropped = inbox.dropped + sum(o.mailbox.dropped for o in outlets)
        if dropped:
            log.warning("frames dropped: the pipeline fell behind", extra={"frames": dropped})
        outputs = tracks.outputs() if tracks else []
        if composite is not None and composite_output is not None:
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

    def _control_state(self) -> ControlState:
        return self.control.state

    async def _supervise(
        self,
        router: MediaRouter,
        stages: list[Stage],
        writers: list[CompositePipeline | TrackRecorder],
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
            if any(s.done.is_set() for s in stages):
                self.control.stop(now, StopReason.ERROR)
            if self.on_progress and now - last_progress >= self.progress_every_s:
                last_progress = now
                self.on_progress(
                    Progress(
                        participants=present,
                        recorded_s=self.control.recorded(now),
                        bytes_written=sum(w.bytes_written for w in writers),
                        paused=self.control.paused,
                        roster=_roster(router, wall_t0),
                    )
                )
            await self.clock.sleep(_CHECK_S)
        return error


def _roster(router: MediaRouter, wall_t0: float) -> tuple[Participant, ...]:
    def utc(media_s: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(wall_t0 + media_s, dt.UTC)

    # Names come from whoever joins the meeting: cut to what the status schema takes.
    return tuple(
        Participant(
            user_id=p.info.user_id[:_NAME_LIMIT],
            display_name=p.info.display_name[:_NAME_LIMIT] if p.info.display_name else None,
            joined_at=utc(p.joined_at),
            left_at=utc(p.left_at) if p.left_at is not None else None,
        )
        for p in router.snapshot()
    )
