"""Run one recording to local files: `tapedeck-bot record`, and the pod's `tapedeck-bot run`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tapedeck_bot.aiortc_patches import AiortcIncompatible
from tapedeck_bot.composite.compositor import Presentation
from tapedeck_bot.composite.encoder import EXTENSIONS, EncoderSettings
from tapedeck_bot.composite.watermark import Stamp, WatermarkError, stamp
from tapedeck_bot.contract import (
    PIN_ENV,
    BotConfig,
    CompositeSpec,
    Meeting,
    Output,
    StopReason,
    StorageSpec,
    TracksSpec,
    UploadSettings,
    WatermarkPosition,
    WatermarkSize,
    whep_token_env,
)
from tapedeck_bot.janus.videoroom import JanusVideoRoom
from tapedeck_bot.logs import configure
from tapedeck_bot.media.writer import FileWriter, OpenWriter
from tapedeck_bot.meeting import MeetingConnector, MeetingError
from tapedeck_bot.recorder import (
    CompositeJob,
    Progress,
    Recorder,
    RecordingResult,
    TracksJob,
    media_wanted,
)
from tapedeck_bot.storage import (
    MissingCredentials,
    ObjectStore,
    Salvaged,
    SalvagePlan,
    StorageError,
    Uploads,
    UploadsIncomplete,
    credentials_from_env,
    list_segments,
    open_store,
    output_metadata,
    part_size_for,
    plan_salvage,
    recording_prefix,
    run_salvage,
)
from tapedeck_bot.webrtc import restrict_host_candidates
from tapedeck_bot.whep.connector import WhepMeeting, WhepStream

__all__ = [
    "JanusRoom",
    "LocalRecording",
    "PrintedProgress",
    "RecordingObserver",
    "UploadTarget",
    "WatermarkFile",
    "WhepStreams",
    "finish_earlier_attempts",
    "pod_recording",
    "record",
    "record_locally",
]

EXIT_OK, EXIT_FAILED, EXIT_BAD_MEETING, EXIT_BAD_CONFIG = 0, 1, 2, 3
# After the stop, how long to wait for the uploads before leaving the rest to the spool.
_FINISH_TIMEOUT_S = 3600


@dataclass(frozen=True)
class UploadTarget:
    """Stream the outputs to `storage` under `{path}/{recordingId}/` instead of keeping files."""

    storage: StorageSpec
    recording_id: str
    settings: UploadSettings
    spool: Path


@dataclass(frozen=True)
class JanusRoom:
    url: str
    room: int
    pin: str | None = None


@dataclass(frozen=True)
class WhepStreams:
    endpoints: tuple[WhepStream, ...]


@dataclass(frozen=True)
class WatermarkFile:
    """The watermark's image file, its size and corner; `field` names the file in errors."""

    path: Path
    size: WatermarkSize | None
    position: WatermarkPosition
    field: str


@dataclass(frozen=True)
class LocalRecording:
    """What to record where: `composite_out` a file, `tracks_dir` a directory (either optional)."""

    meeting: JanusRoom | WhepStreams
    composite: CompositeSpec | None
    composite_out: Path | None
    tracks: TracksSpec | None
    tracks_dir: Path | None
    prefix: str | None = None
    max_seconds: float = 86400
    idle_timeout_s: float = 60
    upload: UploadTarget | None = None
    watermark: WatermarkFile | None = None


def _print_progress(progress: Progress, uploads: Uploads | None) -> None:
    state = " paused" if progress.paused else ""
    pending = f" upload_pending={uploads.pending_bytes}" if uploads else ""
    print(
        f"recording{state}: participants={progress.participants} "
        f"recorded={progress.recorded_s:.1f}s bytes={progress.bytes_written}{pending}",
        flush=True,
    )
    if uploads and uploads.degraded:
        print(f"degraded: {uploads.degraded}", flush=True)


def _watermark(job: LocalRecording) -> Stamp | None:
    """The watermark, read and scaled before the recording starts: a bad image is an error
    then, never a recording without its watermark."""
    if job.watermark is None or job.composite is None:
        return None
    source = job.watermark
    try:
        data = source.path.read_bytes()
    except OSError as exc:
        raise WatermarkError(f"{source.field}: cannot read {source.path}: {exc.strerror}") from exc
    video = job.composite.video
    return stamp(data, source.size, source.position, (video.width, video.height), source.field)


def _jobs(
    job: LocalRecording, uploads: Uploads | None, prefix: str, watermark: Stamp | None
) -> tuple[CompositeJob | None, TracksJob | None]:
    def into(directory: Path) -> OpenWriter:
        if uploads is None:
            return lambda output: FileWriter(directory / output.key)
        return lambda output: uploads.open(
            prefix + output.key,
            output.content_type,
            output_metadata(output.kind, output.started_at, output.user_id),
        )

    composite = None
    if job.composite is not None and job.composite_out is not None:
        out = job.composite_out
        composite = CompositeJob(
            EncoderSettings.from_spec(job.composite),
            job.composite.video.layout,
            out.name,
            into(out.parent),
            Presentation(job.composite.labels, job.composite.speaker_highlight, watermark),
        )
    tracks = None
    if job.tracks is not None and job.tracks_dir is not None:
        tracks = TracksJob(job.tracks, job.prefix, into(job.tracks_dir))
    return composite, tracks


def _connector(job: LocalRecording) -> MeetingConnector:
    """Receive what is recorded: tracks alone need only their users' wanted kinds."""
    tracks = job.tracks if job.tracks_dir is not None else None
    composite = job.composite is not None and job.composite_out is not None
    users = frozenset(tracks.user_ids) if tracks and tracks.user_ids else None
    wanted = media_wanted(composite, tracks)
    meeting = job.meeting
    if isinstance(meeting, WhepStreams):  # everyone counts as present; tracks pick their users
        return WhepMeeting(meeting.endpoints, delivery=wanted, idle_timeout_s=job.idle_timeout_s)
    return JanusVideoRoom(
        meeting.url,
        meeting.room,
        pin=meeting.pin,
        delivery=wanted,
        users=None if composite else users,
    )


@dataclass(frozen=True)
class _Uploading:
    store: ObjectStore
    prefix: str  # {path}/{recordingId}/
    uploads: Uploads
    leftovers: SalvagePlan | None  # what earlier attempts left, to finish beside this one


def _start_uploads(target: UploadTarget, max_seconds: float) -> _Uploading:
    """Open the store, note what earlier attempts left, and start this attempt's uploads."""
    store = open_store(target.storage, credentials_from_env(os.environ, target.storage.type))
    prefix = recording_prefix(target.storage.path, target.recording_id)
    leftovers = None
    try:  # before this attempt's own uploads exist, so that they are not taken for leftovers
        leftovers = plan_salvage(store, prefix, target.spool)
    except StorageError as exc:  # the next attempt looks again
        print(f"tapedeck-bot: salvage skipped: {exc}", file=sys.stderr)
    settings = target.settings
    uploads = Uploads(
        store,
        target.spool,
        part_size=part_size_for(max_seconds, settings.part_size_bytes),
        spool_limit=settings.spool_limit_bytes,
    )
    return _Uploading(store, prefix, uploads, leftovers)


async def _finish_uploads(
    upload: _Uploading, outputs: int, salvaging: asyncio.Task[list[Salvaged]] | None
) -> tuple[list[Output], str | None]:
    """Wait for this attempt's uploads and the salvage, then list every segment in the bucket.
    A second SIGINT/SIGTERM gives up waiting: the spool keeps the rest for the next attempt."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, upload.uploads.abandon)
    store = upload.store
    print(f"uploading: {outputs} output(s) to {store.description}", flush=True)
    error = None
    try:
        await asyncio.to_thread(upload.uploads.finish, _FINISH_TIMEOUT_S)
    except UploadsIncomplete as exc:
        error = str(exc)
        upload.uploads.abandon()  # stop retrying: the spool keeps the rest
    await asyncio.to_thread(upload.uploads.close)
    salvaged = frozenset(s.key for s in await salvaging) if salvaging else frozenset()
    listed: list[Output] = []
    try:  # the bucket's view, with the segments of earlier attempts
        listed = await asyncio.to_thread(list_segments, store, upload.prefix, salvaged)
    except StorageError as exc:
        error = error or str(exc)
    store.close()
    return listed, error


class RecordingObserver(Protocol):
    """Told what happens to one recording: the CLI prints it, the pod reports it."""

    def started(self, recorder: Recorder, at: dt.datetime) -> None: ...

    def progress(self, progress: Progress, uploads: Uploads | None) -> None: ...

    def stopped(self, result: RecordingResult) -> None:
        """Recording ended; the uploads are being finished."""

    def finished(
        self, result: RecordingResult, outputs: list[Output], upload_error: str | None
    ) -> None:
        """Uploads are done: every output is in the bucket, or with `upload_error` some are
        still in the spool. `result.error` says whether the recording itself failed."""

    def failed(self, error: str) -> None:
        """The meeting could not be recorded at all (a wrong room, a refused pin)."""


class PrintedProgress:
    """`tapedeck-bot record`'s observer: progress lines and the outputs on stdout."""

    def started(self, recorder: Recorder, at: dt.datetime) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, recorder.pause)
        loop.add_signal_handler(signal.SIGUSR2, recorder.resume)

    def progress(self, progress: Progress, uploads: Uploads | None) -> None:
        _print_progress(progress, uploads)

    def stopped(self, result: RecordingResult) -> None:
        pass

    def finished(
        self, result: RecordingResult, outputs: list[Output], upload_error: str | None
    ) -> None:
        for output in outputs:
            print(f"output: {json.dumps(output.to_wire())}", flush=True)
        print(
            f"stopped: reason={result.stop_reason} recorded={result.recorded_s:.2f}s "
            f"outputs={len(outputs)}",
            flush=True,
        )
        if result.error or upload_error:
            print(f"tapedeck-bot: {result.error or upload_error}", file=sys.stderr)

    def failed(self, error: str) -> None:
        print(f"tapedeck-bot: {error}", file=sys.stderr)


async def record(job: LocalRecording, observer: RecordingObserver) -> int:
    """Record `job`, telling `observer`; SIGTERM stops with TERMINATED, SIGINT with STOPPED."""
    restrict_host_candidates()
    upload = None
    try:
        watermark = _watermark(job)
        if job.upload is not None:
            upload = _start_uploads(job.upload, job.max_seconds)
    except (WatermarkError, MissingCredentials) as exc:
        observer.failed(str(exc))
        return EXIT_BAD_CONFIG
    uploads = upload.uploads if upload else None
    # Salvage (uploads from the spool) runs beside the recording: the meeting does not wait.
    salvaging = (
        asyncio.create_task(asyncio.to_thread(run_salvage, upload.store, upload.leftovers))
        if upload and upload.leftovers
        else None
    )
    composite, tracks = _jobs(job, uploads, upload.prefix if upload else "", watermark)
    recorder = Recorder(
        _connector(job),
        composite=composite,
        tracks=tracks,
        max_seconds=job.max_seconds,
        idle_timeout_s=job.idle_timeout_s,
        on_progress=lambda progress: observer.progress(progress, uploads),
        on_started=lambda at: observer.started(recorder, at),
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, recorder.stop, StopReason.TERMINATED)
    loop.add_signal_handler(signal.SIGINT, recorder.stop, StopReason.STOPPED)
    try:
        result = await recorder.run()
    except MeetingError as exc:
        observer.failed(str(exc))
        return EXIT_BAD_MEETING
    except AiortcIncompatible as exc:
        observer.failed(str(exc))
        return EXIT_BAD_CONFIG
    observer.stopped(result)
    outputs = result.outputs
    upload_error = None
    if upload is not None:
        outputs, upload_error = await _finish_uploads(upload, len(outputs), salvaging)
    observer.finished(result, outputs, upload_error)
    return EXIT_FAILED if result.error or upload_error else EXIT_OK


def record_locally(job: LocalRecording) -> int:
    configure()
    return asyncio.run(record(job, PrintedProgress()))


def _meeting(meeting: Meeting) -> JanusRoom | WhepStreams:
    """The meeting of a spec, with the secrets the pod got as environment variables."""
    if meeting.janus is not None:
        return JanusRoom(meeting.janus.url, meeting.janus.room, os.environ.get(PIN_ENV))
    assert meeting.whep is not None, "the contract requires exactly one connector"
    return WhepStreams(
        tuple(
            WhepStream(
                url=e.url,
                user_id=e.user_id,
                display_name=e.display_name,
                token=os.environ.get(whep_token_env(i)) if e.token_secret_ref else None,
                url_field=f"spec.meeting.whep.endpoints[{i}].url",
                token_field=f"spec.meeting.whep.endpoints[{i}].tokenSecretRef",
            )
            for i, e in enumerate(meeting.whep.endpoints)
        )
    )


def pod_recording(config: BotConfig) -> LocalRecording:
    """What a bot pod records: its Recording's spec, into the spool, uploaded if configured."""
    spec = config.spec
    spool = Path(config.spool_dir)
    extension = EXTENSIONS[spec.composite.video.codec]
    name = f"{config.file_stem}_composite.{extension}"
    upload = None
    if config.storage is not None:
        # Each attempt's composite is its own segment: salvage keeps the earlier ones.
        name = f"{config.file_stem}_composite_{round(time.time() * 1000)}.{extension}"
        upload = UploadTarget(config.storage, config.recording_id, config.upload, spool)
    return LocalRecording(
        meeting=_meeting(spec.meeting),
        composite=spec.composite if spec.composite.enabled else None,
        composite_out=spool / name,
        tracks=spec.tracks if spec.tracks.enabled else None,
        tracks_dir=spool,
        prefix=spec.file_name_prefix,
        max_seconds=spec.max_seconds,
        idle_timeout_s=spec.idle_timeout_seconds,
        upload=upload,
        watermark=_pod_watermark(config),
    )


def _pod_watermark(config: BotConfig) -> WatermarkFile | None:
    watermark = config.spec.drawn_watermark
    if watermark is None:
        return None
    field = f"spec.composite.watermark.{'url' if watermark.url else 'configMapKeyRef'}"
    if config.watermark_file is None:  # never a recording silently without its watermark
        raise WatermarkError(
            f"{field}: the pod was given no image file (watermarkFile); the operator that "
            "started it is older than this bot"
        )
    return WatermarkFile(Path(config.watermark_file), watermark.size, watermark.position, field)


async def finish_earlier_attempts(
    target: UploadTarget, max_seconds: float
) -> tuple[list[Output], str | None]:
    """Record nothing: complete what earlier attempts left in the spool and list the bucket."""
    upload = _start_uploads(target, max_seconds)
    salvaging = (
        asyncio.create_task(asyncio.to_thread(run_salvage, upload.store, upload.leftovers))
        if upload.leftovers
        else None
    )
    return await _finish_uploads(upload, 0, salvaging)
