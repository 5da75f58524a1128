"""`tapedeck-bot`: the recording bot's entry point."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from tapedeck_bot.contract import KIND, RecordingSpec

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tapedeck-bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check Recording manifests offline")
    validate.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    return max(_validate(f) for f in args.files)


if __name__ == "__main__":
    sys.exit(main())
