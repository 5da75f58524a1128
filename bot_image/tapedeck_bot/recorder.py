"""Run one recording: join the meeting, feed the composite pipeline, decide when to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tapedeck_bot.composite.encoder import EncoderSettings
from tapedeck_bot.composite.pipeline import CompositePipeline
from tapedeck_bot.contract import Layout, StopReason
from tapedeck_bot.control import RecordingControl
from tapedeck_bot.media.router import MediaRouter
from tapedeck_bot.media.writer import OutputWriter
from tapedeck_bot.meeting import MeetingConnector, MeetingError

__all__ = ["Progress", "Recorder", "RecordingFailed", "RecordingResult"]

log = logging.getLogger("tapedeck_bot.recorder")

_CHECK_S = 0.1


class RecordingFailed(RuntimeError):
    """The meeting or the pipeline failed; what was recorded so far is finalized."""


@dataclass(frozen=True)
class Progress:
    participants: int
    recorded_s: float
    encoded_s: float
    bytes_written: int
    paused: bool


@dataclass(frozen=True)
class RecordingResult:
    stop_reason: StopReason
    recorded_s: float
    encoded_s: float
    bytes_written: int
    error: str | None = None


class Recorder:
    def __init__(
        self,
        connector: MeetingConnector,
        open_writer: Callable[[], OutputWriter],
        settings: EncoderSettings,
        *,
        layout: Layout = Layout.GRID,
        max_seconds: float = 86400,
        idle_timeout_s: float = 60,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every_s: float = 1.0,
    ) -> None:
        self.connector, self.open_writer, self.settings = connector, open_writer, settings
        self.layout = layout
        self.control = RecordingControl(max_seconds=max_seconds, idle_timeout_s=idle_timeout_s)
        self.on_progress = on_progress
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
        writer = self.open_writer()  # only once joined: a wrong room leaves no empty file
        self.t0 = time.monotonic()
        router = MediaRouter(self.t0)
        pipeline = CompositePipeline(router, self.control, writer, self.settings, self.layout)
        meeting = asyncio.create_task(self.connector.run(router))
        pipeline.start()
        log.info("recording started")
        error = await self._supervise(router, pipeline, meeting)
        await asyncio.to_thread(pipeline.done.wait)
        await self.connector.leave()
        meeting.cancel()
        with contextlib.suppress(asyncio.CancelledError, MeetingError):
            await meeting
        if pipeline.error is not None:
            error = error or f"encoder failed: {pipeline.error}"
        result = RecordingResult(
            stop_reason=self.control.stop_reason or StopReason.ERROR,
            recorded_s=self.control.recorded(self.control.stop_at or self._now()),
            encoded_s=pipeline.seconds,
            bytes_written=writer.bytes_written,
            error=error,
        )
        log.info(
            "recording finished",
            extra={"stop_reason": result.stop_reason, "recorded_s": round(result.recorded_s, 2)},
        )
        return result

    async def _supervise(
        self, router: MediaRouter, pipeline: CompositePipeline, meeting: asyncio.Task[None]
    ) -> str | None:
        error: str | None = None
        last_progress = 0.0
        while self.control.stop_at is None:
            now = self._now()
            self.control.room_occupancy(now, len(router.present_at(now)))
            self.control.check(now)
            if meeting.done() and error is None:
                exc = meeting.exception()
                error = f"meeting failed: {exc}" if exc else "meeting ended"
                self.control.stop(now, StopReason.ERROR)
            if pipeline.done.is_set():
                self.control.stop(now, StopReason.ERROR)
            if self.on_progress and now - last_progress >= self.progress_every_s:
                last_progress = now
                self.on_progress(
                    Progress(
                        participants=len(router.present_at(now)),
                        recorded_s=self.control.recorded(now),
                        encoded_s=pipeline.seconds,
                        bytes_written=pipeline.writer.bytes_written,
                        paused=self.control.paused,
                    )
                )
            await asyncio.sleep(_CHECK_S)
        return error
