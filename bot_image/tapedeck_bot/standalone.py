"""`tapedeck-bot record`: one recording to a local file, without Kubernetes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tapedeck_bot.composite.encoder import EXTENSIONS, EncoderSettings
from tapedeck_bot.contract import PIN_ENV, BotConfig, CompositeSpec, StopReason
from tapedeck_bot.janus.videoroom import JanusVideoRoom
from tapedeck_bot.logs import configure
from tapedeck_bot.media.writer import FileWriter
from tapedeck_bot.meeting import MeetingError
from tapedeck_bot.recorder import Progress, Recorder
from tapedeck_bot.webrtc import restrict_host_candidates

__all__ = ["record_to_file", "run_pod"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_MEETING = 0, 1, 2


def _print_progress(progress: Progress) -> None:
    state = " paused" if progress.paused else ""
    print(
        f"recording{state}: participants={progress.participants} "
        f"recorded={progress.recorded_s:.1f}s encoded={progress.encoded_s:.1f}s "
        f"bytes={progress.bytes_written}",
        flush=True,
    )


async def _record(
    url: str,
    room: int,
    out: Path,
    composite: CompositeSpec,
    *,
    max_seconds: float,
    idle_timeout_s: float,
    pin: str | None,
) -> int:
    restrict_host_candidates()
    settings = EncoderSettings.from_spec(composite)
    if out.suffix.lstrip(".") != EXTENSIONS[settings.video_codec]:
        print(
            f"note: {settings.video_codec} is written as {EXTENSIONS[settings.video_codec]}, "
            f"whatever the name {out.name} says",
            file=sys.stderr,
        )
    connector = JanusVideoRoom(url, room, pin=pin)
    recorder = Recorder(
        connector,
        lambda: FileWriter(out),
        settings,
        layout=composite.video.layout,
        max_seconds=max_seconds,
        idle_timeout_s=idle_timeout_s,
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
        print(f"tapedeck-bot record: {exc}", file=sys.stderr)
        return EXIT_BAD_MEETING
    print(
        f"stopped: reason={result.stop_reason} recorded={result.recorded_s:.2f}s "
        f"encoded={result.encoded_s:.2f}s bytes={result.bytes_written} file={out}",
        flush=True,
    )
    if result.error:
        print(f"tapedeck-bot record: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def run_pod(config: BotConfig) -> int:
    """The bot pod's entry point: record the configured meeting into the spool directory."""
    janus = config.spec.meeting.janus
    if janus is None:
        print(
            "tapedeck-bot run: only spec.meeting.janus is supported by this bot version",
            file=sys.stderr,
        )
        return EXIT_BAD_MEETING
    composite = config.spec.composite
    out = Path(config.spool_dir) / (
        f"{config.file_stem}_composite.{EXTENSIONS[composite.video.codec]}"
    )
    return record_to_file(
        janus.url,
        janus.room,
        out,
        composite,
        max_seconds=config.spec.max_seconds,
        idle_timeout_s=config.spec.idle_timeout_seconds,
        pin=os.environ.get(PIN_ENV),
    )


def record_to_file(
    url: str,
    room: int,
    out: Path,
    composite: CompositeSpec,
    *,
    max_seconds: float,
    idle_timeout_s: float,
    pin: str | None = None,
) -> int:
    configure()
    return asyncio.run(
        _record(
            url,
            room,
            out,
            composite,
            max_seconds=max_seconds,
            idle_timeout_s=idle_timeout_s,
            pin=pin,
        )
    )
