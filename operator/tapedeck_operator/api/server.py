"""`tapedeck-api`: serve the API on uvicorn, with the cluster's credentials."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import uvicorn
import yaml
from pydantic import ValidationError

from tapedeck_operator.api.app import create_app
from tapedeck_operator.api.auth import KubeAuthorizer
from tapedeck_operator.api.requests import error_field
from tapedeck_operator.api.settings import ApiSettings
from tapedeck_operator.api.store import RecordingStore
from tapedeck_operator.kube import api_client

__all__ = ["load_api_settings", "main"]


def load_api_settings(path: Path | None) -> ApiSettings:
    """The settings in `path` (YAML), or the defaults; errors name the field and the file."""
    if path is None:
        return ApiSettings()
    try:
        return ApiSettings.model_validate(yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"tapedeck-api: cannot read {path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{error_field(e)}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"tapedeck-api: {path}: {problems}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tapedeck-api", description=__doc__)
    parser.add_argument("--config", type=Path, help="the API settings (YAML)")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a pod")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--kubeconfig", help="default: in-cluster, then ~/.kube/config")
    args = parser.parse_args(argv)
    settings = load_api_settings(args.config)
    kube = api_client(args.kubeconfig)
    app = create_app(settings, KubeAuthorizer(kube), RecordingStore(kube))
    # Everything loaded so far lives as long as the server: out of the collector's sight, a
    # list of a thousand Recordings (some 50,000 new objects) parses in half the time.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
