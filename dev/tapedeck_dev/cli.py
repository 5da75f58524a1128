"""`tapedeck-dev`: the local control plane and the process kubelet, for development and tests."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tapedeck_dev.binaries import BinaryNotFound, ensure_binaries, ensure_gitops_health, ensure_helm
from tapedeck_dev.cluster import ClusterError, LocalCluster, default_cluster_dir
from tapedeck_dev.janus import JanusError, JanusServer, default_janus_dir
from tapedeck_dev.storage_cli import add_commands as add_storage_commands
from tapedeck_dev.storage_servers import StorageServerError
from tapedeck_dev.whep_server import PionWhep, WhepServerError, default_whep_dir, ensure_pion_whep

__all__ = ["main"]


def _cluster(args: argparse.Namespace) -> int:
    cluster = LocalCluster(Path(args.dir))
    if args.action == "up":
        kubeconfig = cluster.up()
        print(f"control plane up at {cluster.server}", file=sys.stderr)
        print(f"export KUBECONFIG={kubeconfig}")
    elif args.action == "down":
        cluster.down()
        print("control plane stopped", file=sys.stderr)
    elif args.action == "env":
        if not cluster.is_healthy():
            print("control plane is not running: run `tapedeck-dev cluster up`", file=sys.stderr)
            return 1
        binaries = ensure_binaries()
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        print(f"export PATH={binaries.kubectl.parent}:$PATH")
    return 0


def _janus(args: argparse.Namespace) -> int:
    server = JanusServer(Path(args.dir))
    if args.action == "up":
        server.up()
        print(
            f"janus up: {server.http_url} and {server.ws_url} (log: {server.log})", file=sys.stderr
        )
        print(f"export TAPEDECK_JANUS_URL={server.http_url}")
    else:
        server.down()
        print("janus stopped", file=sys.stderr)
    return 0


def _whep(args: argparse.Namespace) -> int:
    server = PionWhep(Path(args.dir), args.port, args.token)
    if args.action == "up":
        server.up()
        print(f"Pion whip-whep up: publish to {server.whip_url}, play {server.whep_url} "
              f"(log: {server.log})", file=sys.stderr)  # fmt: skip
        print(f"export TAPEDECK_WHEP_URL={server.whep_url}")
    else:
        server.down()
        print("Pion whip-whep stopped", file=sys.stderr)
    return 0


def _whip_publish(args: argparse.Namespace) -> int:
    from tapedeck_dev.whip import WhipFailed, run_whip_publisher

    try:
        asyncio.run(
            run_whip_publisher(
                args.url,
                args.color,
                args.freq,
                amplitude=args.amplitude,
                seconds=args.seconds,
                token=args.token,
            )
        )
    except WhipFailed as error:
        print(f"tapedeck-dev whip-publish: {error}", file=sys.stderr)
        return 1
    return 0


def _span(text: str) -> tuple[float, float]:
    """ "START:SECONDS" -> (start, end)."""
    start, seconds = (float(x) for x in text.split(":"))
    return start, start + seconds


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _participant(args: argparse.Namespace) -> int:
    from tapedeck_dev.lossy import AudioLoss
    from tapedeck_dev.participant import run_participant

    lossy = args.drop_audio or args.audio_loss
    asyncio.run(
        run_participant(
            args.janus,
            args.room,
            args.name,
            args.color,
            args.freq,
            seconds=args.seconds,
            sync=args.sync,
            videocodec=args.codec,
            amplitude=args.amplitude,
            loss=AudioLoss.parse(args.drop_audio, args.audio_loss) if lossy else None,
            video=not args.audio_only,
            video_off=_span(args.video_off) if args.video_off else None,
        )
    )
    return 0


def _meeting(args: argparse.Namespace) -> int:
    from tapedeck_dev.participant import MeetingFailed, run_meeting

    try:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(
                run_meeting(
                    args.janus,
                    args.room,
                    args.participants,
                    join_at=_floats(args.join_at),
                    leave_at=_floats(args.leave_at),
                    sync=args.sync,
                    videocodec=args.codec,
                    seconds=args.seconds,
                )
            )
    except MeetingFailed as error:
        print(f"tapedeck-dev meeting: {error}", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tapedeck_dev.demo import DemoOptions, run_demo

    hold = sys.stdin.isatty() if args.hold is None else args.hold
    options = DemoOptions(
        repo=Path(args.repo), seconds=args.seconds, state=Path(args.state), out=Path(args.out),
        hold=hold,
    )  # fmt: skip
    return run_demo(options)


def _binaries(args: argparse.Namespace) -> int:
    print(
        "finding or building etcd, kube-apiserver, kube-controller-manager, kubectl, helm "
        "gitops-health and Pion's whip-whep "
        "(the first build takes minutes)",
        file=sys.stderr,
    )
    for name, path in vars(ensure_binaries()).items():
        print(f"{name}: {path}")
    print(f"helm: {ensure_helm()}")
    print(f"whip-whep: {ensure_pion_whep()}")
    print(f"gitops-health: {ensure_gitops_health()}")
    return 0


def _kubelet(args: argparse.Namespace) -> int:
    from tapedeck_dev.kubelet import ProcessKubelet

    if os.geteuid() != 0:
        print(
            "tapedeck-dev kubelet: run it as root: containers run in mount namespaces of their own",
            file=sys.stderr,
        )
        return 1
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else LocalCluster().kubeconfig
    kubelet = ProcessKubelet.from_kubeconfig(
        kubeconfig, Path(args.root), node_name=args.node_name, cpu=args.cpu, memory=args.memory
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    kubelet.run(stop)
    return 0


def _up(args: argparse.Namespace) -> int:
    from tapedeck_dev.stack import (
        install_operator,
        kubelet_command,
        operator_command,
        write_local_settings,
    )

    cluster = LocalCluster(Path(args.dir))
    kubeconfig = cluster.up()
    kubectl = [str(ensure_binaries().kubectl), f"--kubeconfig={kubeconfig}"]
    identity = install_operator(kubectl, kubeconfig, cluster.root / "operator.kubeconfig")
    config = Path(args.config) if args.config else write_local_settings(cluster.root / "op.yaml")
    children: list[subprocess.Popen[bytes]] = []
    for name, command, env in (
        ("kubelet", kubelet_command(kubeconfig), dict(os.environ)),
        ("operator", operator_command(config), dict(os.environ, KUBECONFIG=str(identity))),
    ):
        with (cluster.logs / f"{name}.log").open("ab") as log:
            children.append(
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            )
    print(
        f"control plane, process kubelet and operator up (logs in {cluster.logs});\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  export PATH={Path(kubectl[0]).parent}:$PATH\n"
        "  kubectl apply -f examples/recording.yaml && kubectl get rec -w\n"
        "Ctrl-C stops the kubelet and the operator; `tapedeck-dev cluster down` the rest.",
        file=sys.stderr,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):
        if any(child.poll() is not None for child in children):
            print("tapedeck-dev up: a component exited; see its log", file=sys.stderr)
            break
    for child in children:
        child.terminate()
    for child in children:
        child.wait(timeout=60)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tapedeck-dev", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    cluster = commands.add_parser("cluster", help="etcd + kube-apiserver + controller-manager")
    cluster.add_argument("action", choices=["up", "down", "env"])
    cluster.add_argument(
        "--dir", default=str(default_cluster_dir()), help="state directory (default: %(default)s)"
    )
    cluster.set_defaults(func=_cluster)

    janus = commands.add_parser("janus", help="Debian's Janus VideoRoom on 127.0.0.1")
    janus.add_argument("action", choices=["up", "down"])
    janus.add_argument(
        "--dir", default=str(default_janus_dir()), help="state directory (default: %(default)s)"
    )
    janus.set_defaults(func=_janus)

    whep = commands.add_parser("whep", help="Pion's whip-whep example (WHEP) on 127.0.0.1")
    whep.add_argument("action", choices=["up", "down"])
    whep.add_argument(
        "--dir", default=str(default_whep_dir()), help="state directory (default: %(default)s)"
    )
    whep.add_argument("--port", type=int, default=8080)
    whep.add_argument("--token", help="refuse requests without this Bearer token (401)")
    whep.set_defaults(func=_whep)

    whip = commands.add_parser("whip-publish", help="one synthetic WHIP publisher (H.264+Opus)")
    whip.add_argument("--url", default="http://127.0.0.1:8080/whip")
    whip.add_argument("--color", default="red")
    whip.add_argument("--freq", type=float, default=440.0)
    whip.add_argument("--amplitude", type=float, default=0.3, help="of the tone, 0..1")
    whip.add_argument("--seconds", type=float, help="stop after this long")
    whip.add_argument("--token", help="sent as Authorization: Bearer")
    whip.set_defaults(func=_whip_publish)

    janus_url = "http://127.0.0.1:8088/janus"
    participant = commands.add_parser("participant", help="one synthetic publisher")
    participant.add_argument("--janus", default=janus_url)
    participant.add_argument("--room", type=int, required=True)
    participant.add_argument("--name", required=True)
    participant.add_argument("--color", default="red")
    participant.add_argument("--freq", type=float, default=440.0)
    participant.add_argument("--amplitude", type=float, default=0.3, help="of the tone, 0..1")
    participant.add_argument("--seconds", type=float, help="leave after this long")
    participant.add_argument(
        "--sync",
        action="store_true",
        help="black video with a white flash and a click once a second",
    )
    participant.add_argument("--codec", choices=["vp8", "h264"], help="video codec to publish")
    participant.add_argument(
        "--drop-audio",
        default="",
        metavar="START:SECONDS,…",
        help="lose every audio packet in these spans (seconds after publishing)",
    )
    participant.add_argument(
        "--audio-loss", type=float, default=0.0, help="lose this share of audio packets, 0..1"
    )
    participant.add_argument("--audio-only", action="store_true", help="publish no video")
    participant.add_argument(
        "--video-off",
        metavar="START:SECONDS",
        help="turn the camera off for SECONDS, START seconds after publishing",
    )
    participant.set_defaults(func=_participant)

    meeting = commands.add_parser("meeting", help="synthetic participants, each a process")
    meeting.add_argument("--janus", default=janus_url)
    meeting.add_argument("--room", type=int, required=True)
    meeting.add_argument("--participants", type=int, default=3)
    meeting.add_argument("--join-at", default="", help="seconds, comma-separated, per participant")
    meeting.add_argument("--leave-at", default="", help="seconds, comma-separated (-1: never)")
    meeting.add_argument("--seconds", type=float, help="end the meeting after this long")
    meeting.add_argument("--sync", action="store_true", help="flash + click once a second")
    meeting.add_argument("--codec", choices=["vp8", "h264"])
    meeting.set_defaults(func=_meeting)

    demo = commands.add_parser("demo", help="the whole system on this machine (make demo)")
    demo.add_argument("--seconds", type=float, default=30, help="recording time, pause included")
    demo.add_argument("--repo", default=".", help="the checkout (the chart, the examples)")
    demo.add_argument("--state", default="demo-out", help="logs and data (wiped at start)")
    demo.add_argument("--out", default="recordings", help="the downloads and contact sheet")
    demo.add_argument(
        "--hold", action=argparse.BooleanOptionalAction, help="wait for Ctrl-C at the end "
        "(default: when run from a terminal)"
    )  # fmt: skip
    demo.set_defaults(func=_demo)

    up = commands.add_parser(
        "up", help="control plane + process kubelet + operator, until Ctrl-C (dev only)"
    )
    up.add_argument(
        "--dir", default=str(default_cluster_dir()), help="state directory (default: %(default)s)"
    )
    up.add_argument("--config", help="operator settings YAML (default: local processes)")
    up.set_defaults(func=_up)

    binaries = commands.add_parser(
        "binaries", help="find or build the control-plane binaries, helm and gitops-health"
    )
    binaries.set_defaults(func=_binaries)

    kubelet = commands.add_parser("kubelet", help="run pods as local processes (dev only)")
    kubelet.add_argument("--kubeconfig", help="default: the local control plane's admin config")
    kubelet.add_argument(
        "--root",
        default=str(default_cluster_dir() / "kubelet"),
        help="where pod logs and files go (default: %(default)s)",
    )
    kubelet.add_argument("--node-name", default="tapedeck-dev")
    kubelet.add_argument("--cpu", default="2")
    kubelet.add_argument("--memory", default="8Gi")
    kubelet.set_defaults(func=_kubelet)
    add_storage_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (BinaryNotFound, ClusterError, JanusError, StorageServerError, WhepServerError) as exc:
        print(f"tapedeck-dev: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
