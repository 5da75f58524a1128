"""`tapedeck-dev`: the local control plane and the process kubelet, for development and tests."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from tapedeck_dev.binaries import BinaryNotFound, ensure_binaries
from tapedeck_dev.cluster import ClusterError, LocalCluster, default_cluster_dir

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


def _binaries(args: argparse.Namespace) -> int:
    print(
        "finding or building etcd, kube-apiserver, kube-controller-manager, kubectl "
        "(the first build takes minutes)",
        file=sys.stderr,
    )
    for name, path in vars(ensure_binaries()).items():
        print(f"{name}: {path}")
    return 0


def _kubelet(args: argparse.Namespace) -> int:
    from tapedeck_dev.kubelet import ProcessKubelet

    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else LocalCluster().kubeconfig
    kubelet = ProcessKubelet.from_kubeconfig(
        kubeconfig, Path(args.root), node_name=args.node_name, cpu=args.cpu, memory=args.memory
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    kubelet.run(stop)
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

    binaries = commands.add_parser("binaries", help="find or build the control-plane binaries")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (BinaryNotFound, ClusterError) as exc:
        print(f"tapedeck-dev: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
