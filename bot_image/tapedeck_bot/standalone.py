"""Run one recording to local files: `tapedeck-bot record`, and the pod's `tapedeck-bot run`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from tapedeck_bot.composite.encoder import EXTENSIONS, EncoderSettings
from tapedeck_bot.contract import (
    PIN_ENV,
    BotConfig,
    CompositeSpec,
    StopReason,
    TracksSpec,
)
from tapedeck_bot.janus.videoroom import JanusVideoRoom
from tapedeck_bot.logs import configure
from tapedeck_bot.media.writer import FileWriter
from tapedeck_bot.meeting import MediaKind as MeetingMediaKind
from tapedeck_bot.meeting import MeetingError
from tapedeck_bot.recorder import CompositeJob, Progress, Recorder, TracksJob
from tapedeck_bot.tracks.recorder import TRACK_KINDS
from tapedeck_bot.webrtc import restrict_host_candidates

__all__ = ["LocalRecording", "record_locally", "run_pod"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_MEETING = 0, 1, 2


@dataclass(frozen=True)
class LocalRecording:
    """What to record where: `composite_out` a file, `tracks_dir` a directory (either optional)."""

    janus_url: str
    room: int
    composite: CompositeSpec | None
    composite_out: Path | None
    tracks: TracksSpec | None
    tracks_dir: Path | None
    prefix: str | None = None
    max_seconds: float = 86400
    idle_timeout_s: float = 60
    pin: str | None = None


def _print_progress(progress: Progress) -> None:
    state = " paused" if progress.paused else ""
    print(
        f"recording{state}: participants={progress.participants} "
        f"recorded={progress.recorded_s:.1f}s bytes={progress.bytes_written}",
        flush=True,
    )


def _jobs(job: LocalRecording) -> tuple[CompositeJob | None, TracksJob | None]:
    composite = None
    if job.composite is not None and job.composite_out is not None:
        out = job.composite_out
        composite = CompositeJob(
            EncoderSettings.from_spec(job.composite),
            job.composite.video.layout,
            out.name,
            lambda name: FileWriter(out.parent / name),
        )
    tracks = None
    if job.tracks is not None and job.tracks_dir is not None:
        directory = job.tracks_dir
        tracks = TracksJob(job.tracks, job.prefix, lambda name: FileWriter(directory / name))
    return composite, tracks


def _connector(job: LocalRecording) -> JanusVideoRoom:
    """Subscribe to what is recorded: tracks alone need only their users' wanted kinds."""
    track_kinds: frozenset[MeetingMediaKind] = frozenset()
    if job.tracks is not None and job.tracks_dir is not None:
        track_kinds = TRACK_KINDS[job.tracks.media_kind]
    composite = job.composite is not None and job.composite_out is not None
    users = frozenset(job.tracks.user_ids) if job.tracks and job.tracks.user_ids else None
    return JanusVideoRoom(
        job.janus_url,
        job.room,
        pin=job.pin,
        kinds=frozenset({"audio", "video"}) if composite else track_kinds,
        users=None if composite else users,
        encoded_video="video" in track_kinds,
    )


async def _record(job: LocalRecording) -> int:
    restrict_host_candidates()
    composite, tracks = _jobs(job)
    recorder = Recorder(
        _connector(job),
        composite=composite,
        tracks=tracks,
        max_seconds=job.max_seconds,
        idle_timeout_s=job.idle_timeout_s,
        on_progress=_print_progress,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, recorder.stop, StopReason.TERMINATED)
    loop.add_signal_handler(signal.SIGINT, recorder.stop, StopReason.STOPPED)
    loop.add_signal_handler(signal.SIGUSR1, recorder.pause)
    loop.add_signal_handler(signal.SIGUSR2, recorder.resume)
    try:
        result = await recorder.run()
    except MeetingError as exc:
        print(f"tapedeck-bot: {exc}", file=sys.stderr)
        return EXIT_BAD_MEETING
    for output in result.outputs:
        print(f"output: {json.dumps(output.to_wire())}", flush=True)
    print(
        f"stopped: reason={result.stop_reason} recorded={result.recorded_s:.2f}s "
        f"outputs={len(result.outputs)}",
        flush=True,
    )
    if result.error:
        print(f"tapedeck-bot: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def record_locally(job: LocalRecording) -> int:
    configure()
    return asyncio.run(_record(job))


def run_pod(config: BotConfig) -> int:
    """The bot pod's entry point: record the configured meeting into the spool directory."""
    spec = config.spec
    janus = spec.meeting.janus
    if janus is None:
        print(
            "tapedeck-bot run: only spec.meeting.janus is supported by this bot version",
            file=sys.stderr,
        )
        return EXIT_BAD_MEETING
    spool = Path(config.spool_dir)
    extension = EXTENSIONS[spec.composite.video.codec]
    return record_locally(
        LocalRecording(
            janus_url=janus.url,
            room=janus.room,
            composite=spec.composite if spec.composite.enabled else None,
            composite_out=spool / f"{config.file_stem}_composite.{extension}",
            tracks=spec.tracks if spec.tracks.enabled else None,
            tracks_dir=spool,
            prefix=spec.file_name_prefix,
            max_seconds=spec.max_seconds,
            idle_timeout_s=spec.idle_timeout_seconds,
            pin=os.environ.get(PIN_ENV),
        )
    )
