"""`tapedeck-operator`: the control plane's entry point."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tapedeck_bot.contract.crd import render_crd

__all__ = ["main"]


def _run(args: argparse.Namespace) -> int:
    import kopf

    from tapedeck_operator.aftercare import Aftercare
    from tapedeck_operator.config import ConfigError, load_settings
    from tapedeck_operator.handlers import post_event, register
    from tapedeck_operator.kube import KubeClusterApi, api_client
    from tapedeck_operator.reconcile import Context
    from tapedeck_operator.webhooks.egress import AddressPolicy, Egress

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"tapedeck-operator: {exc}", file=sys.stderr)
        return 2
    kopf.configure(log_format=kopf.LogFormat.JSON, verbose=args.verbose)
    if not args.verbose:  # kopf logs every timer tick of every Recording at INFO
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    policy = AddressPolicy(
        allow_loopback=settings.webhooks.allow_loopback_destinations,
        allow_private=settings.webhooks.allow_private_destinations,
    )
    egress = Egress(policy, timeout=settings.webhooks.timeout_seconds)
    ctx = Context(KubeClusterApi(api_client()), settings, egress)
    aftercare = Aftercare(ctx.api, settings, egress, ctx.metrics, emit=post_event)
    registry = kopf.OperatorRegistry()
    register(registry, ctx, aftercare)
    if settings.metrics_port:
        ctx.metrics.serve(settings.metrics_port, settings.listen_address)
    liveness = None
    if settings.health_port:
        liveness = f"http://{settings.listen_address}:{settings.health_port}/healthz"
    kopf.run(
        registry=registry,
        standalone=True,  # one replica (Recreate): no peering objects, no peering RBAC
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=liveness,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tapedeck-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("crd", help="print the Recording CRD (pipe it to `kubectl apply -f -`)")
    run = commands.add_parser(
        "run", help="run the operator", description="Reconcile Recordings into bot pods."
    )
    run.add_argument(
        "--namespace",
        action="append",
        metavar="NS",
        help="watch only this namespace (repeatable); all namespaces when not given",
    )
    run.add_argument(
        "--config", type=Path, help="settings YAML (see docs/operator.md); defaults when absent"
    )
    run.add_argument("--verbose", action="store_true", help="debug logs")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    sys.stdout.write(render_crd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
