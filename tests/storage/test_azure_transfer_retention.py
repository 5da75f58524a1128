"""Azure Blob (Azurite), copies to the user's buckets, and retention."""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
from pathlib import Path

import pytest

from tapedeck_bot.storage import (
    Credentials,
    Destination,
    Uploads,
    delete_recording,
    expire_by_rule,
    open_store,
    output_metadata,
    presign,
    remove_expiry_rule,
    salvage,
    transfer,
)
from tapedeck_bot.storage.s3 import S3Store
from tapedeck_dev.storage_servers import Azurite, SeaweedFS
from tests.storage.http import get, refused
from tests.storage_fixtures import azure_store, s3_spec, seaweed_store

MIB = 1024 * 1024
STARTED = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)


def test_azure_staged_upload_and_sas_download(
    azurite: Azurite, media: dict[str, Path], tmp_path: Path
) -> None:
    store = azure_store(azurite)
    reference = media["webm"].read_bytes()
    uploads = Uploads(store, tmp_path, part_size=5 * MIB, spool_limit=1024 * MIB)
    upload = uploads.open(
        "rec/1/composite.webm", "video/webm", output_metadata("composite", STARTED)
    )
    for at in range(0, len(reference), 300 * 1024):
        upload.write(reference[at : at + 300 * 1024])
    upload.close()
    [result] = uploads.finish(timeout=60)
    uploads.close()
    assert result.parts == 4  # 20 MiB: three 5 MiB blocks and a short one

    head = store.head("rec/1/composite.webm")
    assert (head.size, head.content_type) == (len(reference), "video/webm")
    assert head.metadata == {
        "tapedeck_kind": "composite",
        "tapedeck_started_at": STARTED.isoformat(),
    }
    signed = presign(store, "rec/1/composite.webm", dt.timedelta(days=10))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(signed.url).query)
    expiry = dt.datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    assert expiry <= dt.datetime.now(dt.UTC) + dt.timedelta(days=7)  # clamped like SigV4
    assert get(signed.url) == reference
    assert refused(signed.url.replace("sig=", "sig=A")) == 403
    short = presign(store, "rec/1/composite.webm", dt.timedelta(seconds=1))
    time.sleep(2.1)
    assert refused(short.url) == 403
    store.close()


def test_azure_salvage_commits_staged_blocks(azurite: Azurite, media: dict[str, Path]) -> None:
    store = azure_store(azurite)
    reference = media["mp4"].read_bytes()
    upload_id = store.create_upload("rec/2/composite.mp4", "video/mp4", {})
    for n in (1, 2):
        store.upload_part(
            "rec/2/composite.mp4", upload_id, n, reference[(n - 1) * 5 * MIB : n * 5 * MIB]
        )
    [salvaged] = salvage(store, "rec/2/")
    assert (salvaged.parts, salvaged.bytes) == (2, 10 * MIB)
    assert b"".join(store.read("rec/2/composite.mp4", MIB)) == reference[: 10 * MIB]
    assert store.head("rec/2/composite.mp4").content_type == "video/mp4"
    assert store.list_uploads("rec/") == []
    store.close()


def test_azure_salvage_from_the_spool_keeps_the_metadata(
    azurite: Azurite, media: dict[str, Path], tmp_path: Path
) -> None:
    """Azure sets metadata at commit, so salvage must carry it from the spool's manifest."""
    store = azure_store(azurite)
    reference = media["webm"].read_bytes()
    uploads = Uploads(store, tmp_path, part_size=5 * MIB, spool_limit=1024 * MIB)
    metadata = output_metadata("track", STARTED, "alice")
    upload = uploads.open("rec/5/alice.webm", "audio/webm", metadata)
    upload.write(reference[: 12 * MIB])
    deadline = time.monotonic() + 30
    while len(store.list_parts("rec/5/alice.webm", "blocks")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    uploads.abandon()  # the container dies here
    uploads.close()
    [salvaged] = salvage(store, "rec/5/", tmp_path)
    assert salvaged.bytes == 12 * MIB
    head = store.head("rec/5/alice.webm")
    assert (head.content_type, head.metadata) == ("audio/webm", metadata)
    store.close()


def test_transfer_streams_to_each_destination_and_isolates_failures(
    seaweed: SeaweedFS, azurite: Azurite, media: dict[str, Path]
) -> None:
    source = seaweed_store(seaweed)
    composite = media["mp4"].read_bytes()
    source.put(
        "primary/r1/composite.mp4", composite, "video/mp4", output_metadata("composite", STARTED)
    )
    source.put("primary/r1/track.webm", b"opus" * 1000, "audio/webm", {})
    azure = azure_store(azurite)
    spaces = seaweed_store(seaweed, storage_type="digitalocean", region="nyc3")
    wrong = open_store(s3_spec(seaweed.endpoint, "elsewhere"), Credentials("nobody", "wrong"))
    progress: list[tuple[str, int]] = []

    results = transfer(
        source,
        "primary/r1/",
        ["primary/r1/composite.mp4", "primary/r1/track.webm"],
        [
            Destination(wrong, "copies/r1/"),
            Destination(azure, "copies/r1/"),
            Destination(spaces, "r1/"),
        ],
        part_size=5 * MIB,
        on_progress=lambda d, n: progress.append((d, n)),
    )

    failed, to_azure, to_spaces = results
    assert failed.error is not None
    assert "InvalidAccessKeyId" in failed.error
    assert failed.keys == ()
    assert to_azure.error is None
    assert to_spaces.error is None
    assert to_azure.keys == ("copies/r1/composite.mp4", "copies/r1/track.webm")
    assert to_azure.bytes == len(composite) + 4000
    assert b"".join(azure.read("copies/r1/composite.mp4", MIB)) == composite
    assert b"".join(spaces.read("r1/track.webm", MIB)) == b"opus" * 1000
    head = azure.head("copies/r1/composite.mp4")
    assert (head.content_type, head.metadata) == (
        "video/mp4",
        output_metadata("composite", STARTED),
    )
    azure_progress = [n for d, n in progress if d == azure.description]
    assert azure_progress == sorted(azure_progress)
    assert len(azure_progress) > 3
    for store in (source, azure, spaces, wrong):
        store.close()


def test_retention_deletes_only_that_recording(seaweed: SeaweedFS) -> None:
    store = seaweed_store(seaweed)
    for rec in ("rec-a", "rec-ab", "rec-b"):
        for name in ("composite.mp4", "track.webm"):
            store.put(f"team/{rec}/{name}", b"x", "video/mp4", {})
    store.create_upload("team/rec-a/late.mp4", "video/mp4", {})  # a leftover upload

    deleted = delete_recording(store, "team/rec-a/")
    assert sorted(deleted) == ["team/rec-a/composite.mp4", "team/rec-a/track.webm"]
    left = sorted(o.key for o in store.list_objects("team/"))
    assert left == [
        f"team/{r}/{n}" for r in ("rec-ab", "rec-b") for n in ("composite.mp4", "track.webm")
    ]
    assert store.list_uploads("team/rec-a/") == []
    with pytest.raises(ValueError, match="ending in '/'"):
        delete_recording(store, "team/rec-a")  # would match rec-ab
    store.close()


def test_lifecycle_rule_is_set_on_the_bucket(seaweed: SeaweedFS) -> None:
    store = seaweed_store(seaweed)
    assert isinstance(store, S3Store)
    assert expire_by_rule(store, "team/rec-a/", 7) == "tapedeck-expire-rec-a"
    assert expire_by_rule(store, "team/rec-b/", 9) == "tapedeck-expire-rec-b"
    rules = {r["Filter"]["Prefix"]: r for r in store.lifecycle_rules()}
    assert {p: r["Expiration"]["Days"] for p, r in rules.items()} == {
        "team/rec-a/": 7,
        "team/rec-b/": 9,
    }  # one rule per recording, side by side
    remove_expiry_rule(store, "tapedeck-expire-rec-a")
    assert [r["Filter"]["Prefix"] for r in store.lifecycle_rules()] == ["team/rec-b/"]
    remove_expiry_rule(store, "tapedeck-expire-rec-b")
    assert store.lifecycle_rules() == []
    store.close()
