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
from tapedeck_bot.composite.compositor import EVERYTHING_SHOWN, Presentation
from tapedeck_bot.composite.encoder import EncoderSettings
from tapedeck_bot.composite.pipeline import CompositePipeline
from tapedeck_bot.contract import (
    STREAM_KINDS,
    Layout,
    MediaGap,
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
from tapedeck_bot.receiving import Delivery
from tapedeck_bot.tracks.recorder import TrackRecorder
from tapedeck_bot.tracks.writer import KEPT_AS_SENT

__all__ = [
    "CompositeJob",
    "Progress",
    "Recorder",
    "RecordingResult",
    "TracksJob",
    "media_wanted",
]

log = logging.getLogger("tapedeck_bot.recorder")

_CHECK_S = 0.1
_NAME_LIMIT = 256
_GAPS_LIMIT = 100  # the status schema's
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
    presentation: Presentation = EVERYTHING_SHOWN


@dataclass(frozen=True)
class TracksJob:
    spec: TracksSpec
    prefix: str | None
    open_writer: OpenWriter


def media_wanted(composite: bool, tracks: TracksSpec | None) -> Delivery:
    """The composite mixes and lays out decoded media. Tracks keep Opus and VP8 as sent;
    video of other codecs (H.264) is decoded to be re-encoded to VP8 for WebM."""
    decoded: frozenset[StreamKind] = frozenset({"audio", "video"}) if composite else frozenset()
    encoded = STREAM_KINDS[tracks.media_kind] if tracks is not None else frozenset()
    return Delivery(decoded, encoded, KEPT_AS_SENT)


@dataclass(frozen=True)
class _Pipeline:
    """One recording's stages and the hand-overs between them."""

    inbox: PlacementInbox
    outlets: list[Outlet]
    placement: Placement
    composite: CompositePipeline | None
    composite_output: Output | None
    tracks: TrackRecorder | None

    @property
    def stages(self) -> list[Stage]:
        return [s for s in (self.placement, self.composite, self.tracks) if s is not None]

    @property
    def bytes_written(self) -> int:
        return sum(s.bytes_written for s in (self.composite, self.tracks) if s is not None)

    @property
    def dropped(self) -> int:
        mailboxes = sum(o.mailbox.dropped for o in self.outlets)
        return self.inbox.dropped + self.placement.dropped + mailboxes

    def outputs(self) -> list[Output]:
        outputs = self.tracks.outputs() if self.tracks else []
        if self.composite is not None and self.composite_output is not None:
            written = {
                "bytes": self.composite.bytes_written,
                "complete": self.composite.error is None,
            }
            outputs.insert(0, self.composite_output.model_copy(update=written))
        return outputs


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
        self._stages: list[Stage] = []

    def _now(self) -> float:
        assert self.t0 is not None
        return self.clock.monotonic() - self.t0

    # Called on the asyncio thread (signal handlers, the spec watcher).
    def pause(self) -> None:
        if self.t0 is not None:
            self.control.pause(self._now())
            self._changed()

    def resume(self) -> None:
        if self.t0 is not None:
            self.control.resume(self._now())
            self._changed()

    def stop(self, reason: StopReason = StopReason.STOPPED) -> None:
        if self.t0 is not None:
            self.control.stop(self._now(), reason)
            self._changed()

    def _changed(self) -> None:
        """The stages read the new ControlState at their next step: make that now."""
        for stage in self._stages:
            stage.wake()

    async def run(self) -> RecordingResult:
        """Join (errors such as a wrong room raise before anything is written), record, stop."""
        await self.connector.join()
        self.t0, wall_t0 = self.clock.monotonic(), self.clock.time()
        pipeline = self._pipeline(self.t0, wall_t0)
        self._stages = pipeline.stages
        router = MediaRouter(self.t0, pipeline.inbox)
        meeting = asyncio.create_task(self.connector.run(router))
        for stage in pipeline.stages:
            stage.start()
        log.info("recording started", extra={"started_at": wall_t0})
        if self.on_started is not None:
            self.on_started(dt.datetime.fromtimestamp(wall_t0, dt.UTC))
        error = await self._supervise(router, pipeline, meeting, wall_t0)
        for stage in pipeline.stages:
            while not stage.done.is_set():  # on the clock, so that fake time moves on too
                await self.clock.sleep(_CHECK_S)
            if stage.error is not None and error is None:
                error = f"{stage.name} failed: {stage.error}"
        await self.connector.leave()
        meeting.cancel()
        await asyncio.gather(meeting, return_exceptions=True)  # its failure is in `error`
        if dropped := pipeline.dropped:
            log.warning("frames dropped: the pipeline fell behind", extra={"frames": dropped})
        result = RecordingResult(
            stop_reason=self.control.stop_reason or StopReason.ERROR,
            recorded_s=self.control.recorded(self.control.stop_at or self._now()),
            outputs=pipeline.outputs(),
            error=error,
        )
        log.info(
            "recording finished",
            extra={"stop_reason": result.stop_reason, "recorded_s": round(result.recorded_s, 2)},
        )
        return result

    def _pipeline(self, t0: float, wall_t0: float) -> _Pipeline:
        """The stages of this recording, wired, not started."""
        inbox: PlacementInbox = Mailbox(_INBOX_LIMIT)
        outlets: list[Outlet] = []
        composite = composite_output = tracks = None
        if self.composite is not None:
            job = self.composite
            composite_output = Output(
                kind="composite",
                key=job.name,
                content_type=content_type_of(job.name),
                started_at=dt.datetime.fromtimestamp(wall_t0, dt.UTC),
            )
            mailbox: Mailbox[StageEvent] = Mailbox(_MAILBOX_LIMIT)
            outlets.append(Outlet(mailbox, decoded=frozenset({"audio", "video"})))
            composite = CompositePipeline(
                t0,
                mailbox,
                self._control_state,
                job.open_writer(composite_output),
                job.settings,
                job.layout,
                self.clock,
                presentation=job.presentation,
            )
        if self.tracks is not None:
            mailbox = Mailbox(_MAILBOX_LIMIT)
            kinds = STREAM_KINDS[self.tracks.spec.media_kind]
            # Decoded video, for senders whose codec a track cannot keep as sent.
            outlets.append(Outlet(mailbox, decoded=kinds & {"video"}, encoded=kinds))
            tracks = TrackRecorder(
                self.tracks.spec,
                self.tracks.prefix,
                self.tracks.open_writer,
                mailbox,
                self._control_state,
                wall_t0,
                self.clock,
            )
        placement = Placement(t0, inbox, outlets, self._control_state, self.clock)
        return _Pipeline(inbox, outlets, placement, composite, composite_output, tracks)

    def _control_state(self) -> ControlState:
        return self.control.state

    async def _supervise(
        self,
        router: MediaRouter,
        pipeline: _Pipeline,
        meeting: asyncio.Task[None],
        wall_t0: float,
    ) -> str | None:
        error: str | None = None
        last_progress = 0.0
        while self.control.stop_at is None:
            now = self._now()
            present = len(router.present_at(now))
            self.control.room_empty_since(None if present else router.last_left())
            self.control.check(now)
            if meeting.done() and error is None:
                exc = meeting.exception()
                error = f"meeting failed: {exc}" if exc else "meeting ended"
                self.control.stop(now, StopReason.ERROR)
            if any(s.done.is_set() for s in pipeline.stages):
                self.control.stop(now, StopReason.ERROR)
            if self.on_progress and now - last_progress >= self.progress_every_s:
                last_progress = now
                self.on_progress(
                    Progress(
                        participants=present,
                        recorded_s=self.control.recorded(now),
                        bytes_written=pipeline.bytes_written,
                        paused=self.control.paused,
                        roster=_roster(router, wall_t0),
                    )
                )
            await self.clock.sleep(_CHECK_S)
        self._changed()  # stopped: by a limit, an empty room or a failure
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
            gaps=[
                MediaGap(
                    started_at=utc(g.start), ended_at=utc(g.end) if g.end is not None else None
                )
                for g in p.gaps[-_GAPS_LIMIT:]
            ],
        )
        for p in router.snapshot()
    )
