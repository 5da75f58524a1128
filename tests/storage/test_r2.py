"""Against Cloudflare's own R2 code (Miniflare's local R2 S3 endpoint, over HTTPS): the R2
client gets through where botocore's defaults fail, and R2's equal-part rule is enforced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapedeck_bot.storage import Credentials, ObjectStore, StorageError, Uploads, open_store
from tapedeck_bot.storage.store import UploadedPart
from tapedeck_dev.storage_servers import Miniflare
from tests.storage_fixtures import s3_spec

MIB = 1024 * 1024


def _store(server: Miniflare, storage_type: str, closing: list[ObjectStore]) -> ObjectStore:
    spec = s3_spec(server.endpoint, server.bucket, storage_type)
    store = open_store(
        spec, Credentials(server.access_key, server.secret_key), verify=str(server.ca_file)
    )
    closing.append(store)
    return store


def test_recording_streams_to_r2_over_https(
    miniflare: Miniflare, media: dict[str, Path], tmp_path: Path, closing: list[ObjectStore]
) -> None:
    store = _store(miniflare, "r2", closing)
    reference = media["mp4"].read_bytes()
    uploads = Uploads(store, tmp_path, part_size=5 * MIB, spool_limit=1024 * MIB)
    upload = uploads.open("r/1/composite.mp4", "video/mp4", {"tapedeck_kind": "composite"})
    for at in range(0, len(reference), 200 * 1024):
        upload.write(reference[at : at + 200 * 1024])
    upload.close()
    [result] = uploads.finish(timeout=120)
    uploads.close()
    assert result.parts == 4  # R2 accepted three equal 5 MiB parts and a short last one
    assert b"".join(store.read("r/1/composite.mp4", MIB)) == reference
    head = store.head("r/1/composite.mp4")
    assert (head.content_type, head.metadata) == ("video/mp4", {"tapedeck_kind": "composite"})


def test_botocore_defaults_fail_where_the_r2_client_works(
    miniflare: Miniflare, closing: list[ObjectStore]
) -> None:
    _store(miniflare, "r2", closing).put("r/2/ok.webm", b"opus" * 100, "audio/webm", {})
    aws_defaults = _store(miniflare, "s3", closing)  # aws-chunked with a CRC32 trailer
    with pytest.raises(StorageError, match="500"):
        aws_defaults.put("r/2/fails.webm", b"opus" * 100, "audio/webm", {})


def test_r2_refuses_unequal_parts(miniflare: Miniflare, closing: list[ObjectStore]) -> None:
    """Why the uploader keeps every part the same size (SeaweedFS would accept these)."""
    store = _store(miniflare, "r2", closing)
    upload_id = store.create_upload("r/3/bad.mp4", "video/mp4", {})
    parts = [
        UploadedPart(n, store.upload_part("r/3/bad.mp4", upload_id, n, b"v" * size), size)
        for n, size in enumerate((5 * MIB, 6 * MIB, MIB), start=1)
    ]
    with pytest.raises(StorageError, match="NoSuchUpload"):  # Miniflare's word for it
        store.complete_upload("r/3/bad.mp4", upload_id, parts, "video/mp4", {})
