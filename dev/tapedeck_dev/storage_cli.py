"""`tapedeck-dev s3` (a local SeaweedFS with a bucket), `tapedeck-dev bucket` (create a bucket
once its server answers: the chart's demo) and `tapedeck-dev fetch` (download a recording's
objects through presigned URLs), for the demo."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from tapedeck_bot.contract import STORAGE_SECRET_ENV, StorageSpec
from tapedeck_bot.storage import credentials_from_env, open_store, presign
from tapedeck_dev.storage_servers import SeaweedFS, SeaweedPorts

__all__ = ["add_commands"]


def _s3(args: argparse.Namespace) -> int:
    server = SeaweedFS(
        Path(args.dir),
        SeaweedPorts(first=args.first_port),
        access_key=os.environ.get(STORAGE_SECRET_ENV["accessKeyId"], "tapedeck-dev"),
        secret_key=os.environ.get(STORAGE_SECRET_ENV["secretAccessKey"], "tapedeck-dev-secret"),
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.up()
    try:
        spec = StorageSpec(type="s3", region="us-east-1", endpoint=server.endpoint,
                           bucket=args.bucket, secret_ref={"name": "local"})  # fmt: skip
        store = open_store(spec, credentials_from_env(os.environ, spec.type))
        store.ensure_bucket()
        store.close()
        print(f"s3 ready: {server.endpoint} bucket {args.bucket} (log: {server.log})", flush=True)
        stop.wait()
    finally:
        server.down()
    return 0


def _bucket(args: argparse.Namespace) -> int:
    spec = StorageSpec.model_validate(yaml.safe_load(args.storage))
    deadline = time.monotonic() + args.wait
    while True:
        try:
            store = open_store(spec, credentials_from_env(os.environ, spec.type))
            try:
                store.ensure_bucket()
            finally:
                store.close()
        except Exception as error:  # the server may still be starting: any failure waits
            if time.monotonic() > deadline:
                print(f"tapedeck-dev bucket: {spec.bucket}: {error}", file=sys.stderr)
                return 1
            time.sleep(2)
        else:
            print(f"bucket {spec.bucket} ready at {spec.endpoint}", flush=True)
            return 0


def _fetch(args: argparse.Namespace) -> int:
    spec = StorageSpec.model_validate(yaml.safe_load(args.storage))
    store = open_store(spec, credentials_from_env(os.environ, spec.type))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    objects = store.list_objects(args.prefix)
    for obj in objects:
        signed = presign(store, obj.key, dt.timedelta(days=args.days))
        target = out / obj.key.rsplit("/", 1)[-1]
        with urllib.request.urlopen(signed.url, timeout=30) as response:
            target.write_bytes(response.read())
        until = f"{signed.expires_at:%Y-%m-%d %H:%M}Z"
        print(f"{obj.key} ({obj.size} bytes) -> {target}; URL valid until {until}:")
        print(f"  {signed.url}")
    store.close()
    if not objects:
        print(f"tapedeck-dev fetch: nothing under {args.prefix}", file=sys.stderr)
        return 1
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s3 = commands.add_parser("s3", help="SeaweedFS (S3) on 127.0.0.1 until interrupted")
    s3.add_argument("--dir", required=True, help="data directory")
    s3.add_argument("--first-port", type=int, default=17600, help="S3 port; ~10 follow it")
    s3.add_argument("--bucket", default="recordings")
    s3.set_defaults(func=_s3)

    bucket = commands.add_parser("bucket", help="create a bucket once its server answers")
    bucket.add_argument("--storage", required=True, help="a spec.storage as JSON/YAML")
    bucket.add_argument("--wait", type=float, default=300, help="seconds to keep trying")
    bucket.set_defaults(func=_bucket)

    fetch = commands.add_parser("fetch", help="download objects through presigned URLs")
    fetch.add_argument("--storage", required=True, help="a spec.storage as JSON/YAML")
    fetch.add_argument("--prefix", required=True, help="e.g. {path}/{recordingId}/")
    fetch.add_argument("--out", required=True)
    fetch.add_argument("--days", type=float, default=7, help="URL expiry (at most 7)")
    fetch.set_defaults(func=_fetch)
