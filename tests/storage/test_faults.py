"""Nothing captured is lost: a store outage, a killed uploader, a full spool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tapedeck_bot.storage import (
    Credentials,
    ObjectStore,
    Uploads,
    UploadsIncomplete,
    list_segments,
    open_store,
    salvage,
)
from tapedeck_bot.storage.spool import SpoolManifest, upload_dir, write_manifest
from tapedeck_bot.storage.store import UploadedPart
from tapedeck_dev.storage_servers import SeaweedFS, SeaweedPorts
from tests.storage.media import playable_seconds
from tests.storage_fixtures import s3_spec, seaweed_store

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def _parts_listed(store: ObjectStore, prefix: str) -> int:
    uploads = store.list_uploads(prefix)
    return sum(len(store.list_parts(u.key, u.upload_id)) for u in uploads)


def _download(store: ObjectStore, key: str, to: Path) -> bytes:
    data = b"".join(store.read(key, MIB))
    to.write_bytes(data)
    return data


def test_store_down_for_30_s_mid_recording_loses_nothing(
    media: dict[str, Path], tmp_path: Path
) -> None:
    server = SeaweedFS(tmp_path / "seaweed", SeaweedPorts(first=17400))
    server.up()
    try:
        store = seaweed_store(server, "outage")
        reference = media["mp4"].read_bytes()
        uploads = Uploads(store, tmp_path / "spool", part_size=5 * MIB, spool_limit=1024 * MIB)
        upload = uploads.open("rec/1/composite.mp4", "video/mp4")
        slowest_write = 0.0

        def record() -> None:  # ~0.6 MiB/s, like a busy 720p composite, for ~26 s
            nonlocal slowest_write
            for at in range(0, len(reference), 64 * 1024):
                started = time.monotonic()
                upload.write(reference[at : at + 64 * 1024])
                slowest_write = max(slowest_write, time.monotonic() - started)
                time.sleep(0.1)

        recorder = threading.Thread(target=record)
        recorder.start()
        deadline = time.monotonic() + 30
        while _parts_listed(store, "rec/") < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _parts_listed(store, "rec/") >= 1
        server.down()
        time.sleep(30)
        assert uploads.last_error is not None  # it noticed, and kept the bytes
        server.up()
        recorder.join()
        upload.close()
        uploads.finish(timeout=120)
        uploads.close()
        got = _download(store, "rec/1/composite.mp4", tmp_path / "out.mp4")
        store.close()
    finally:
        server.down()
    assert got == reference
    assert slowest_write < 0.5, "the encoder never waits for the network"
    video, audio = playable_seconds(tmp_path / "out.mp4")
    assert video == pytest.approx(20, abs=0.1)
    assert audio == pytest.approx(20, abs=0.1)


@pytest.mark.parametrize("ext", ["mp4", "webm"])
def test_killed_uploader_is_salvaged_by_the_next_attempt(
    seaweed: SeaweedFS, media: dict[str, Path], tmp_path: Path, ext: str
) -> None:
    store = seaweed_store(seaweed)
    key = f"recordings/{uuid.uuid4()}/composite.{ext}"
    prefix = key.rsplit("/", 1)[0] + "/"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TAPEDECK_STORAGE_ACCESS_KEY_ID": seaweed.access_key,
        "TAPEDECK_STORAGE_SECRET_ACCESS_KEY": seaweed.secret_key,
    }
    bucket = store.bucket
    spool = tmp_path / "spool"
    feeder = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.feeder", seaweed.endpoint, bucket, key,
         str(media[ext]), str(spool), "4"],
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while _parts_listed(store, prefix) < 2 and time.monotonic() < deadline:
        assert feeder.poll() is None, "the feeder finished before it was killed"
        time.sleep(0.05)
    feeder.send_signal(signal.SIGKILL)
    feeder.wait()
    uploaded = _parts_listed(store, prefix)
    assert uploaded >= 2

    # A new pod: its spool is gone, only the store's parts are left.
    [salvaged] = salvage(store, prefix, spool=None)
    assert (salvaged.key, salvaged.parts, salvaged.bytes) == (key, uploaded, uploaded * 5 * MIB)
    assert store.list_uploads(prefix) == []
    data = _download(store, key, tmp_path / f"salvaged.{ext}")
    reference = media[ext].read_bytes()
    assert data == reference[: len(data)]
    video, audio = playable_seconds(tmp_path / f"salvaged.{ext}")
    share = len(data) / len(reference)
    assert video > 20 * share - 2.5
    assert audio > 20 * share - 2.5
    [segment] = list_segments(store, prefix, frozenset({key}))
    assert (segment.key, segment.bytes, segment.salvaged) == (key, len(data), True)
    store.close()


def test_container_restart_salvages_the_spool_too(
    seaweed: SeaweedFS, media: dict[str, Path], tmp_path: Path
) -> None:
    """Same pod, new container: the emptyDir still holds what was not uploaded yet."""
    store = seaweed_store(seaweed)
    reference = media["webm"].read_bytes()
    spool = tmp_path / "spool"
    uploads = Uploads(store, spool, part_size=5 * MIB, spool_limit=1024 * MIB)
    upload = uploads.open("rec/2/track.webm", "video/webm")
    upload.write(reference[: 12 * MIB])
    deadline = time.monotonic() + 30
    while _parts_listed(store, "rec/2/") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    uploads.abandon()  # the process dies here: 2 parts uploaded, 2 MiB only in the spool
    uploads.close()
    [salvaged] = salvage(store, "rec/2/", spool)
    assert salvaged.bytes == 12 * MIB
    assert b"".join(store.read("rec/2/track.webm", MIB)) == reference[: 12 * MIB]
    assert not any((spool / "uploads").iterdir())
    store.close()


def test_full_spool_reports_degraded_and_keeps_recording(
    seaweed: SeaweedFS, media: dict[str, Path], tmp_path: Path
) -> None:
    unreachable = s3_spec("http://127.0.0.1:9", "nowhere")  # nothing listens on port 9
    dead = open_store(unreachable, Credentials("k", "s"))
    spool = tmp_path / "spool"
    uploads = Uploads(dead, spool, part_size=5 * MIB, spool_limit=8 * MIB)
    upload = uploads.open("rec/3/composite.mp4", "video/mp4")
    reference = media["mp4"].read_bytes()
    for at in range(0, len(reference), 256 * 1024):
        upload.write(reference[at : at + 256 * 1024])  # never raises
    assert uploads.degraded is not None
    assert uploads.degraded.startswith("SpoolFull: ")
    assert "spool limit of 8 MiB" in uploads.degraded
    assert "127.0.0.1:9" in uploads.degraded
    assert "recording goes on to local disk" in uploads.degraded
    upload.close()
    with pytest.raises(UploadsIncomplete, match=r"rec/3/composite\.mp4.*stay in"):
        uploads.finish(timeout=1)
    uploads.abandon()
    uploads.close()
    dead.close()

    # Nothing lost: the next attempt, with a working store, uploads it all from the spool.
    store = seaweed_store(seaweed)
    [salvaged] = salvage(store, "rec/3/", spool)
    assert salvaged.bytes == len(reference)
    assert b"".join(store.read("rec/3/composite.mp4", MIB)) == reference
    store.close()


def test_spool_of_an_upload_completed_just_before_a_kill_is_cleared(
    seaweed: SeaweedFS, tmp_path: Path
) -> None:
    store = seaweed_store(seaweed)
    upload_id = store.create_upload("rec/4/track.webm", "audio/webm", {})
    etag = store.upload_part("rec/4/track.webm", upload_id, 1, b"opus" * 100)
    store.complete_upload(
        "rec/4/track.webm", upload_id, [UploadedPart(1, etag, 400)], "audio/webm", {}
    )
    directory = upload_dir(tmp_path, "rec/4/track.webm")  # what the killed bot left
    write_manifest(directory, SpoolManifest("rec/4/track.webm", "audio/webm", {}, upload_id))
    assert salvage(store, "rec/4/", tmp_path) == []
    assert not directory.exists()
    assert b"".join(store.read("rec/4/track.webm", MIB)) == b"opus" * 100
    store.close()
