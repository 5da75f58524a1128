"""`kubectl tapedeck`: start, pause, resume, stop, watch and fetch Recordings, read their
bots' logs, and make API keys for tapedeck-api. kubectl finds the console script
`kubectl-tapedeck` on PATH."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import yaml
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from tapedeck_bot.contract import Phase, RecordingStatus
from tapedeck_operator.plugin.apikey import API_VERBS, api_key_objects, curl_example
from tapedeck_operator.plugin.cluster import PluginError, Recordings
from tapedeck_operator.plugin.manifest import StartRequest, recording_for
from tapedeck_operator.plugin.views import settled, status_view

__all__ = ["main"]

_STATES = {"pause": ("Paused", "paused"), "resume": ("Recording", "resumed"),
           "stop": ("Stopped", "stopped")}  # fmt: skip
_CHUNK = 256 * 1024


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _start(args: argparse.Namespace, out: Console) -> int:
    try:
        manifest = recording_for(
            StartRequest(
                meeting_id=args.meeting_id,
                janus_url=args.janus,
                room=args.room,
                name=args.name,
                tracks=args.tracks or args.tracks_only,
                composite=not args.tracks_only,
                codec=args.codec,
                layout=args.layout,
                max_seconds=args.max_seconds,
            )
        )
    except ValueError as error:
        raise PluginError(str(error)) from None
    if args.dry_run:
        out.out(yaml.safe_dump(manifest, sort_keys=False), end="", highlight=False)
        return 0
    recordings = _recordings(args)
    created = recordings.create(manifest)
    out.print(f"recording.tapedeck.dev/{created['metadata']['name']} created", markup=False)
    return 0


def _set_state(args: argparse.Namespace, out: Console) -> int:
    state, done = _STATES[args.command]
    _recordings(args).set_state(args.name, state)
    out.print(f"recording.tapedeck.dev/{args.name} {done}", markup=False)
    return 0


def _status(args: argparse.Namespace, out: Console) -> int:
    recordings = _recordings(args)

    def view() -> tuple[object, bool]:
        recording = recordings.get(args.name)
        status = RecordingStatus.model_validate(recording.get("status") or {})
        return status_view(recording, recordings.events(recording), _now()), settled(status)

    shown, done = view()
    if not args.watch:
        out.print(shown)
        return 0
    with Live(shown, console=out, refresh_per_second=4) as live:  # type: ignore[arg-type]
        while not done:
            time.sleep(args.interval)
            shown, done = view()
            live.update(shown)  # type: ignore[arg-type]
    return 0


def _download(args: argparse.Namespace, out: Console) -> int:
    recording = _recordings(args).get(args.name)
    status = RecordingStatus.model_validate(recording.get("status") or {})
    if status.expired:
        raise PluginError(
            f"recording {args.name}'s outputs were deleted when its retention period ended"
        )
    if not status.downloads:
        if status.phase is Phase.UPLOADED:
            raise PluginError(
                f"recording {args.name} is UPLOADED but has no download URLs yet: the operator "
                f"presigns them; see kubectl describe recording {args.name}"
            )
        phase = status.phase.value if status.phase else "not started"
        raise PluginError(
            f"recording {args.name} is {phase}: its outputs can be downloaded once it is "
            f"UPLOADED (kubectl tapedeck status {args.name} --watch)"
        )
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn())  # fmt: skip
    with Progress(*columns, console=out) as progress:
        for item in status.downloads:
            target = directory / PurePosixPath(item.key).name
            task = progress.add_task(target.name, total=item.bytes or None)
            try:
                with (
                    urllib.request.urlopen(item.url, timeout=60) as response,
                    target.open("wb") as sink,
                ):
                    while chunk := response.read(_CHUNK):
                        sink.write(chunk)
                        progress.advance(task, len(chunk))
            except (urllib.error.URLError, OSError) as error:
                raise PluginError(
                    f"cannot download {item.key} ({error}): the URL may have expired; "
                    "the operator renews them, so try again in a minute"
                ) from None
    out.print(f"{len(status.downloads)} file(s) in {directory}", markup=False)
    return 0


def _logs(args: argparse.Namespace, out: Console) -> int:
    recordings = _recordings(args)
    recording = recordings.get(args.name)
    pods = recordings.bot_pods(recording)
    if not pods:
        raise PluginError(
            f"recording {args.name} has no bot pod (yet, or any more): "
            f"kubectl tapedeck status {args.name}"
        )
    for pod in pods:
        name = pod["metadata"]["name"]
        phase = pod.get("status", {}).get("phase", "Unknown")
        out.print(f"==> {name} ({phase}) <==", style="bold", markup=False)
        for chunk in recordings.pod_log(name):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    return 0


def _api_key(args: argparse.Namespace, out: Console) -> int:
    recordings = _recordings(args)
    verbs = [v for v in args.verbs.split(",") if v]
    try:
        objects = api_key_objects(args.name, recordings.namespace, verbs)
    except ValueError as error:
        raise PluginError(str(error)) from None
    token = recordings.create_api_key(objects, round(args.hours * 3600))
    out.out(token, highlight=False)
    hint = Console(stderr=True, highlight=False)
    hint.print(
        f"# an API key for recordings in {recordings.namespace} ({', '.join(verbs)}), valid "
        f"{args.hours:g} h; revoke it: kubectl -n {recordings.namespace} delete rolebinding "
        f"{args.name}\n# for example, with TOKEN set to it:\n"
        + curl_example(args.api, recordings.namespace, "MEETING_ID"),
        markup=False,
        soft_wrap=True,
    )
    return 0


def _recordings(args: argparse.Namespace) -> Recordings:
    options = vars(args)
    return Recordings(options.get("kubeconfig"), options.get("context"), options.get("namespace"))


def _parser() -> argparse.ArgumentParser:
    # kubectl's own flags, before or after the subcommand, as kubectl users type them.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                        help="default: the context's namespace")  # fmt: skip
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS,
                        help="default: $KUBECONFIG or ~/.kube/config")  # fmt: skip
    common.add_argument("--context", default=argparse.SUPPRESS,
                        help="a kubeconfig context other than the current one")  # fmt: skip
    parser = argparse.ArgumentParser(prog="kubectl tapedeck", description=__doc__, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser(
        "start", help="create a Recording of a Janus room", parents=[common]
    )
    start.add_argument("meeting_id", metavar="MEETING_ID")
    start.add_argument(
        "--janus", required=True, help="the Janus HTTP API, e.g. http://host:8088/janus"
    )
    start.add_argument("--room", type=int, required=True, help="the VideoRoom number")
    start.add_argument("--name", help="the Recording's name (default: from MEETING_ID)")
    start.add_argument("--tracks", action="store_true", help="also one audio file per participant")
    start.add_argument("--tracks-only", action="store_true", help="tracks, and no composite")
    start.add_argument("--codec", choices=["H264", "VP8"], default="H264", help="the composite's")
    start.add_argument("--layout", choices=["grid", "speaker"], default="grid")
    start.add_argument("--max-seconds", type=int, help="stop after this long")
    start.add_argument("--dry-run", action="store_true", help="print the Recording, create nothing")
    start.set_defaults(func=_start)

    for command, (state, _) in _STATES.items():
        sub = commands.add_parser(command, help=f"set spec.state to {state}", parents=[common])
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(func=_set_state)

    status = commands.add_parser(
        "status", help="phase, participants, uploads and events", parents=[common]
    )
    status.add_argument("name", metavar="NAME")
    status.add_argument("-w", "--watch", action="store_true", help="until it is done")
    status.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    status.set_defaults(func=_status)

    download = commands.add_parser(
        "download", help="fetch the outputs through their URLs", parents=[common]
    )
    download.add_argument("name", metavar="NAME")
    download.add_argument("--dir", default=".", help="where to write them (default: here)")
    download.set_defaults(func=_download)

    key = commands.add_parser(
        "api-key",
        help="a token for tapedeck-api: a ServiceAccount with a Role on recordings",
        parents=[common],
    )
    key.add_argument("name", metavar="NAME", help="of the ServiceAccount, Role and RoleBinding")
    key.add_argument("--verbs", default=",".join(API_VERBS), help="default: %(default)s")
    key.add_argument("--hours", type=float, default=24, help="the token's lifetime")
    key.add_argument(
        "--api", default="http://tapedeck-api.tapedeck-system", help="for the printed example"
    )
    key.set_defaults(func=_api_key)

    logs = commands.add_parser("logs", help="the bot's logs, every attempt", parents=[common])
    logs.add_argument("name", metavar="NAME")
    logs.set_defaults(func=_logs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Console(highlight=False)
    try:
        code: int = args.func(args, out)
    except PluginError as error:
        Console(stderr=True, highlight=False).print(f"error: {error}", soft_wrap=True, markup=False)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
