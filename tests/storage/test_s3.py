"""Streaming uploads, presigned URLs and the R2 wire format, against SeaweedFS."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
import urllib.parse
from pathlib import Path
from typing import Any

from tapedeck_bot.storage import (
    Credentials,
    ObjectStore,
    Uploads,
    open_store,
    output_metadata,
    presign,
)
from tapedeck_bot.storage.s3 import S3Store
from tapedeck_bot.storage.store import UploadedPart, complete_once
from tapedeck_dev.storage_servers import SeaweedFS
from tests.storage.http import get, refused
from tests.storage_fixtures import s3_spec

MIB = 1024 * 1024


def _capture(store: ObjectStore, operation: str) -> list[dict[str, str]]:
    """Headers of each `operation` request exactly as botocore puts them on the wire."""
    assert isinstance(store, S3Store)
    seen: list[dict[str, str]] = []

    def hook(request: Any, **_: Any) -> None:
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
        seen.append({**headers, **{f"?{k}": v[0] for k, v in query.items()}})

    store.client.meta.events.register(f"before-send.s3.{operation}", hook)
    return seen


def _feed(upload: Any, data: bytes, rng: random.Random) -> None:
    """Write like an encoder: chunks of uneven size."""
    at = 0
    while at < len(data):
        n = rng.randint(1, 256 * 1024)
        upload.write(data[at : at + n])
        at += n


def test_recording_streams_in_equal_parts_while_written(
    s3: ObjectStore, media: dict[str, Path], tmp_path: Path
) -> None:
    reference = media["mp4"].read_bytes()
    parts = _capture(s3, "UploadPart")
    uploads = Uploads(s3, tmp_path / "spool", part_size=5 * MIB, spool_limit=1024 * MIB)
    started = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    key = "recordings/rec-1/daily_composite.mp4"
    upload = uploads.open(key, "video/mp4", output_metadata("composite", started))
    rng = random.Random(1)
    _feed(upload, reference[: 11 * MIB], rng)
    deadline = time.monotonic() + 30
    while len(parts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(parts) == 2, "two full parts go up before the writer is closed"
    _feed(upload, reference[11 * MIB :], rng)
    upload.close()
    [result] = uploads.finish(timeout=60)
    uploads.close()

    by_number = sorted(parts, key=lambda h: int(h["?partNumber"]))
    sizes = [int(h["content-length"]) for h in by_number]
    assert sizes[:-1] == [5 * MIB] * (len(sizes) - 1)  # R2: all equal but the last
    assert 0 < sizes[-1] <= 5 * MIB
    assert sum(sizes) == len(reference) == result.bytes
    assert b"".join(s3.read(key, MIB)) == reference
    head = s3.head(key)
    assert head.content_type == "video/mp4"
    assert head.metadata == {
        "tapedeck_kind": "composite",
        "tapedeck_started_at": started.isoformat(),
    }
    assert not any((tmp_path / "spool" / "uploads").iterdir()), "the spool is emptied"


def test_short_output_is_one_put(s3: ObjectStore, tmp_path: Path) -> None:
    creates = _capture(s3, "CreateMultipartUpload")
    uploads = Uploads(s3, tmp_path, part_size=5 * MIB, spool_limit=MIB)
    upload = uploads.open("r/1/track.webm", "audio/webm")
    upload.write(b"webm" * 1000)
    upload.close()
    [result] = uploads.finish(timeout=30)
    uploads.close()
    assert (result.bytes, result.parts, creates) == (4000, 1, [])
    assert b"".join(s3.read("r/1/track.webm", MIB)) == b"webm" * 1000


def test_presigned_get_downloads_and_refuses_tampering_and_expiry(
    s3: ObjectStore, media: dict[str, Path]
) -> None:
    body = media["webm"].read_bytes()[: 3 * MIB]
    s3.put("r/1/out.webm", body, "video/webm", {})

    asked = dt.timedelta(days=30)
    before = dt.datetime.now(dt.UTC)
    signed = presign(s3, "r/1/out.webm", asked)
    assert signed.expires_at - before <= dt.timedelta(days=7, seconds=1)  # clamped
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(signed.url).query)
    assert query["X-Amz-Expires"] == ["604800"]
    assert get(signed.url) == body  # a plain HTTP client, no credentials

    tampered = signed.url.replace("out.webm", "other.webm")
    assert refused(tampered) == 403

    short = presign(s3, "r/1/out.webm", dt.timedelta(seconds=1))
    time.sleep(2.1)
    assert refused(short.url) == 403


def test_r2_client_sends_no_checksum_trailer_over_https(
    seaweed: SeaweedFS, tmp_path: Path, closing: list[ObjectStore]
) -> None:
    """botocore >= 1.36 turns bodies into aws-chunked with a CRC32 trailer over TLS, which
    R2 refuses; our R2 client must send a plain signed body with no checksum headers."""
    spec = s3_spec(seaweed.https_endpoint, "r2-wire", "r2")
    store = open_store(
        spec, Credentials(seaweed.access_key, seaweed.secret_key), verify=str(seaweed.ca_file)
    )
    closing.append(store)
    store.ensure_bucket()
    sent = {
        op: _capture(store, op)
        for op in ("CreateMultipartUpload", "UploadPart", "PutObject", "GetObject")
    }
    uploads = Uploads(store, tmp_path, part_size=5 * MIB, spool_limit=64 * MIB)
    part = bytes(range(256)) * (24 * 1024)  # 6 MiB: one full part and a short last one
    upload = uploads.open("r/1/comp.mp4", "video/mp4", {"tapedeck_kind": "composite"})
    upload.write(part)
    upload.close()
    uploads.finish(timeout=60)
    uploads.close()
    store.put("r/1/small.webm", b"abc", "audio/webm", {})
    assert b"".join(store.read("r/1/comp.mp4", MIB)) == part

    ignored = {
        "user-agent",
        "amz-sdk-invocation-id",
        "amz-sdk-request",
        "x-amz-date",
        "authorization",
    }
    names = {
        op: [sorted(k for k in set(h) - ignored if not k.startswith("?")) for h in heads]
        for op, heads in sent.items()
    }
    assert names["CreateMultipartUpload"] == [
        ["content-length", "content-type", "x-amz-content-sha256", "x-amz-meta-tapedeck_kind"]
    ]
    assert names["UploadPart"] == [["content-length", "expect", "x-amz-content-sha256"]] * 2
    assert names["PutObject"] == [
        ["content-length", "content-type", "expect", "x-amz-content-sha256"]
    ]
    assert names["GetObject"] == [["x-amz-content-sha256"]]  # no x-amz-checksum-mode
    [first] = [h for h in sent["UploadPart"] if h["?partNumber"] == "1"]
    assert first["x-amz-content-sha256"] == hashlib.sha256(part[: 5 * MIB]).hexdigest()
    assert "/auto/s3/aws4_request" in first["authorization"]  # R2's region


def test_default_s3_client_would_send_the_trailer_r2_refuses(
    seaweed: SeaweedFS, closing: list[ObjectStore]
) -> None:
    """The contrast that keeps the test above honest: AWS defaults over TLS are aws-chunked."""
    spec = s3_spec(seaweed.https_endpoint, "aws-wire")
    store = open_store(
        spec, Credentials(seaweed.access_key, seaweed.secret_key), verify=str(seaweed.ca_file)
    )
    closing.append(store)
    store.ensure_bucket()
    sent = _capture(store, "PutObject")
    store.put("k", b"abc", "text/plain", {})
    assert sent[0]["content-encoding"] == "aws-chunked"
    assert sent[0]["x-amz-trailer"] == "x-amz-checksum-crc32"


def test_completing_twice_is_success(s3: ObjectStore) -> None:
    """A retry after a lost CompleteMultipartUpload answer must not fail the upload."""
    upload_id = s3.create_upload("r/1/c.mp4", "video/mp4", {})
    part = UploadedPart(1, s3.upload_part("r/1/c.mp4", upload_id, 1, b"m" * 1000), 1000)
    complete_once(s3, "r/1/c.mp4", upload_id, [part], "video/mp4", {})
    complete_once(s3, "r/1/c.mp4", upload_id, [part], "video/mp4", {})
    assert s3.head("r/1/c.mp4").size == 1000
