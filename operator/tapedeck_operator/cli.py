"""`tapedeck-operator`: the control plane's entry point."""

from __future__ import annotations

import argparse
import sys

from tapedeck_bot.contract.crd import render_crd

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tapedeck-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("crd", help="print the Recording CRD (pipe it to `kubectl apply -f -`)")
    args = parser.parse_args(argv)
    if args.command == "crd":
        sys.stdout.write(render_crd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
