"""`tapedeck-bot`: the recording bot's entry point."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from tapedeck_bot.contract import (
    CONFIG_ENV,
    KIND,
    BotConfig,
    CompositeSpec,
    RecordingSpec,
    StorageSpec,
    TracksSpec,
    UploadSettings,
    WatermarkPosition,
    WatermarkSize,
    whep_token_env,
)

if TYPE_CHECKING:
    from tapedeck_bot.standalone import JanusRoom, WatermarkFile, WhepStreams

__all__ = ["main"]


def _validate(path: Path) -> int:
    """Check a Recording manifest against the contract, as the API server would."""
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    recordings = [d for d in documents if d.get("kind") == KIND]
    if not recordings:
        print(f"{path}: no {KIND} found", file=sys.stderr)
        return 1
    failed = 0
    for doc in recordings:
        name = doc.get("metadata", {}).get("name", "?")
        try:
            RecordingSpec.model_validate(doc.get("spec") or {})
        except ValidationError as exc:
            failed += 1
            for error in exc.errors():
                field = ".".join(str(p) for p in ("spec", *error["loc"]))
                print(f"{path}: {KIND} {name}: {field}: {error['msg']}", file=sys.stderr)
        else:
            print(f"{path}: {KIND} {name}: valid")
    return 1 if failed else 0


def _meeting(args: argparse.Namespace) -> JanusRoom | WhepStreams | str:
    """The meeting the arguments name, or what is wrong with them."""
    from tapedeck_bot.standalone import JanusRoom, WhepStreams
    from tapedeck_bot.whep.connector import WhepStream

    if bool(args.janus) == bool(args.whep):
        return "give --janus URL --room N, or --whep USER=URL (repeatable)"
    if args.janus:
        if args.room is None:
            return "--janus needs --room"
        return JanusRoom(args.janus, args.room, args.pin)
    endpoints = []
    for index, value in enumerate(args.whep):
        user, _, url = value.partition("=")
        if not user or not url.startswith(("http://", "https://")):
            return f"--whep {value!r}: expected USER=http(s)://…"
        token_env = whep_token_env(index)
        endpoints.append(
            WhepStream(
                url,
                user,
                token=os.environ.get(token_env),
                url_field=f"--whep {user}=URL",
                token_field=f"${token_env}",
            )
        )
    return WhepStreams(tuple(endpoints))


def _record(args: argparse.Namespace) -> int:
    from tapedeck_bot.standalone import LocalRecording, UploadTarget, record_locally

    meeting = _meeting(args)
    if isinstance(meeting, str):
        print(f"tapedeck-bot record: {meeting}", file=sys.stderr)
        return 2
    if args.out is None and args.tracks is None:
        print(
            "tapedeck-bot record: give --out FILE (composite), --tracks DIR, or both",
            file=sys.stderr,
        )
        return 2
    composite = CompositeSpec.model_validate(
        {
            "video": {
                "codec": args.codec,
                "width": args.width,
                "height": args.height,
                "fps": args.fps,
                "layout": args.layout,
            },
            "audio": {"codec": args.audio_codec, "channels": args.channels},
            "labels": args.labels,
            "speakerHighlight": args.speaker_highlight,
        }
    )
    watermark = _watermark(args)
    if isinstance(watermark, str):
        print(f"tapedeck-bot record: {watermark}", file=sys.stderr)
        return 2
    users = [u for u in (args.track_users or "").split(",") if u]
    upload = None
    if args.upload:
        storage = StorageSpec.model_validate(yaml.safe_load(args.upload))
        spool = args.spool or Path(tempfile.mkdtemp(prefix="tapedeck-spool-"))
        upload = UploadTarget(
            storage, args.recording_id or str(uuid.uuid4()), UploadSettings(), spool
        )
    return record_locally(
        LocalRecording(
            meeting=meeting,
            composite=composite,
            composite_out=args.out,
            tracks=TracksSpec(enabled=True, user_ids=users, media_kind=args.track_media)
            if args.tracks
            else None,
            tracks_dir=args.tracks,
            prefix=args.prefix,
            max_seconds=args.seconds,
            idle_timeout_s=args.idle_timeout,
            upload=upload,
            watermark=watermark,
        )
    )


def _watermark(args: argparse.Namespace) -> WatermarkFile | str | None:
    """The --watermark file at its size and corner, or what is wrong with the arguments."""
    from tapedeck_bot.standalone import WatermarkFile

    if args.watermark is None:
        return None
    size = None
    if args.watermark_size:
        width, cross, height = args.watermark_size.partition("x")
        try:
            if not cross:
                raise ValueError("no x")
            size = WatermarkSize(
                width=int(width) if width else None, height=int(height) if height else None
            )
        except (ValueError, ValidationError):
            expected = "WIDTHxHEIGHT, WIDTHx or xHEIGHT (1 to 1920 pixels)"
            return f"--watermark-size {args.watermark_size!r}: expected {expected}"
    return WatermarkFile(
        args.watermark, size, WatermarkPosition(args.watermark_position), "--watermark"
    )


def _run(args: argparse.Namespace) -> int:
    from tapedeck_bot.pod import run_pod
    from tapedeck_bot.standalone import EXIT_BAD_CONFIG

    raw = args.config.read_text() if args.config else os.environ.get(CONFIG_ENV)
    if not raw:
        print(f"tapedeck-bot run: set ${CONFIG_ENV} or pass --config", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        config = BotConfig.model_validate_json(raw)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            print(f"tapedeck-bot run: config {field}: {error['msg']}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return run_pod(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tapedeck-bot", description=__doc__)
    version = importlib.metadata.version("tapedeck")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check Recording manifests offline")
    validate.add_argument("files", nargs="+", type=Path)

    record = commands.add_parser(
        "record",
        help="record a Janus room or WHEP streams to files",
        description="Record a Janus VideoRoom, or WHEP streams, to files. SIGINT/SIGTERM stop "
        "and finalize the files; SIGUSR1 pauses and SIGUSR2 resumes.",
    )
    record.add_argument("--janus", help="http(s)://…/janus or ws(s)://…")
    record.add_argument("--room", type=int, help="the Janus room")
    record.add_argument("--pin", help="the room's pin, if it has one")
    record.add_argument(
        "--whep",
        action="append",
        metavar="USER=URL",
        help="a WHEP endpoint, recorded as participant USER (repeatable); the Bearer token of "
        "the i-th (from 0) is read from $TAPEDECK_WHEP_TOKEN_i",
    )
    record.add_argument(
        "--out", type=Path, help="the composite's file (.mp4 for H264, .webm for VP8)"
    )
    record.add_argument(
        "--tracks",
        type=Path,
        metavar="DIR",
        help="also write one audio file per participant session into DIR",
    )
    record.add_argument("--track-users", metavar="ID,ID", help="record tracks of these users only")
    record.add_argument("--prefix", help="file name prefix of the track files")
    record.add_argument(
        "--track-media",
        choices=["audio", "video", "both"],
        default="audio",
        help="what each track records (video: VP8 kept as sent)",
    )
    record.add_argument(
        "--seconds",
        type=float,
        default=86400,
        help="stop (reason MAX_SECONDS) after recording this long",
    )
    record.add_argument(
        "--idle-timeout",
        type=float,
        default=60,
        help="stop (reason ALL_PEERS_LEFT) once the room is empty this long",
    )
    record.add_argument("--codec", choices=["H264", "VP8"], default="H264")
    record.add_argument("--audio-codec", choices=["AAC", "OPUS", "VORBIS"])
    record.add_argument("--channels", type=int, choices=[1, 2], default=2)
    record.add_argument("--layout", choices=["grid", "speaker"], default="grid")
    record.add_argument(
        "--labels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="names on the tiles",
    )
    record.add_argument(
        "--speaker-highlight",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a border around the speaker's tile",
    )
    record.add_argument(
        "--watermark", type=Path, metavar="IMAGE", help="draw this image (a PNG) on every frame"
    )
    record.add_argument(
        "--watermark-size",
        metavar="WxH",
        help="the watermark's size in pixels (WIDTHx or xHEIGHT keeps its aspect); "
        "its own size when not given",
    )
    record.add_argument(
        "--watermark-position",
        choices=[p.value for p in WatermarkPosition],
        default=WatermarkPosition.LEFT_TOP.value,
    )
    record.add_argument(
        "--upload",
        metavar="STORAGE",
        help="stream the outputs to this storage destination (a spec.storage as JSON/YAML; "
        "keys in $TAPEDECK_STORAGE_ACCESS_KEY_ID/_SECRET_ACCESS_KEY) instead of local files; "
        "--out and --tracks then give the names",
    )
    record.add_argument("--recording-id", help="with --upload: keys are {path}/{id}/...")
    record.add_argument("--spool", type=Path, help="with --upload: the spool directory")
    record.add_argument("--width", type=int, default=1280)
    record.add_argument("--height", type=int, default=720)
    record.add_argument("--fps", type=int, default=30)
    run = commands.add_parser(
        "run",
        help="the bot pod's entry point",
        description=f"Record as configured by a BotConfig (JSON) in ${CONFIG_ENV} or --config.",
    )
    run.add_argument("--config", type=Path, help=f"a BotConfig JSON file (default: ${CONFIG_ENV})")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "record":
        try:
            return _record(args)
        except ValidationError as exc:
            for error in exc.errors():
                print(f"tapedeck-bot record: {error['msg']}", file=sys.stderr)
            return 2
    return max(_validate(f) for f in args.files)


if __name__ == "__main__":
    sys.exit(main())
