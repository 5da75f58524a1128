"""StreamingUpload against an in-memory store, with requests run when the test says and
retries timed by a fake clock: equal parts, outages waited out with backoff, a spool that
fills while the store is down, and refusals given up with the bytes kept for salvage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest

from tapedeck_bot.storage import Uploads, UploadsIncomplete
from tapedeck_bot.storage.spool import part_path, upload_dir
from tapedeck_bot.storage.store import ObjectInfo, PendingUpload, StorageError, UploadedPart
from tests.unit.pipeline_fakes import FakeClock


class HeldRequests(Executor):
    """Runs the uploader's requests only when `run()` is called, in order."""

    def __init__(self) -> None:
        self.queue: list[Callable[[], object]] = []

    def submit(self, fn: Callable[..., object], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.queue.append(lambda: fn(*args, **kwargs))
        return Future()

    def run(self) -> None:
        while self.queue:
            self.queue.pop(0)()


class MemoryStore:
    """The ObjectStore calls an upload makes; `failures` are raised first, one per call."""

    bucket = "recordings"
    description = "memory bucket"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.parts: dict[str, dict[int, bytes]] = {}
        self.failures: list[StorageError] = []
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)

    def create_upload(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str:
        self._call("create")
        self.parts[key] = {}
        return f"upload-{key}"

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        self._call(f"part {number}")
        self.parts[key][number] = data
        return f"etag-{number}"

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[UploadedPart],
        content_type: str,
        metadata: Mapping[str, str],
    ) -> None:
        self._call("complete")
        self.objects[key] = b"".join(self.parts[key][p.number] for p in parts)

    def put(self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        self._call("put")
        self.objects[key] = data

    def head(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(self.objects[key]))

    # Not used by an upload.
    def ensure_bucket(self) -> None: ...
    def abort_upload(self, key: str, upload_id: str) -> None: ...
    def list_uploads(self, prefix: str) -> list[PendingUpload]:
        return []

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        return []

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        return []

    def read(self, key: str, chunk_size: int) -> Iterator[bytes]:
        yield b""

    def delete(self, keys: Sequence[str]) -> None: ...
    def presign_get(self, key: str, expires: dt.timedelta) -> str:
        return ""

    def close(self) -> None: ...


class Rig:
    def __init__(self, tmp_path: Path, *, spool_limit: int = 1 << 30) -> None:
        self.store = MemoryStore()
        self.clock = FakeClock()
        self.requests = HeldRequests()
        self.uploads = Uploads(
            self.store,  # type: ignore[arg-type]
            tmp_path,
            part_size=1000,
            spool_limit=spool_limit,
            clock=self.clock,
            executor=self.requests,
        )


def _outage() -> StorageError:
    return StorageError("503 Slow Down", retryable=True)


@pytest.mark.parametrize(
    ("total", "parts"), [(3000, [1000, 1000, 1000]), (3100, [1000] * 3 + [100])]
)
def test_every_part_but_the_last_has_the_part_size(
    tmp_path: Path, total: int, parts: list[int]
) -> None:
    rig = Rig(tmp_path)
    upload = rig.uploads.open("rec/a.mp4", "video/mp4")
    data = bytes(range(256)) * 13
    for start in range(0, total, 300):
        upload.write(data[start : min(start + 300, total)])
    upload.close()
    rig.requests.run()
    (result,) = rig.uploads.finish(timeout=0)
    assert rig.store.objects["rec/a.mp4"] == data[:total]
    assert [len(p) for _, p in sorted(rig.store.parts["rec/a.mp4"].items())] == parts
    assert (result.bytes, result.parts) == (total, len(parts))
    assert not upload_dir(tmp_path, "rec/a.mp4").exists()  # the spool is cleared


def test_an_output_smaller_than_a_part_is_one_put(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    upload = rig.uploads.open("rec/t.webm", "audio/webm")
    upload.write(b"x" * 999)
    upload.close()
    rig.requests.run()
    assert rig.store.calls == ["put"]
    assert rig.store.objects["rec/t.webm"] == b"x" * 999


def test_an_outage_is_waited_out_with_growing_backoff(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.store.failures = [_outage() for _ in range(4)]
    upload = rig.uploads.open("rec/a.mp4", "video/mp4")
    upload.write(b"y" * 2500)
    upload.close()
    rig.requests.run()
    assert rig.store.objects["rec/a.mp4"] == b"y" * 2500
    waits = rig.clock.waits
    assert len(waits) == 4
    # Each delay is drawn from the upper half of a ceiling that doubles from 0.5 s.
    assert [0.25 <= waits[0] <= 0.5, 0.5 <= waits[1] <= 1, 1 <= waits[2] <= 2] == [True] * 3


def test_the_spool_fills_while_the_store_is_down_and_drains_after(tmp_path: Path) -> None:
    rig = Rig(tmp_path, spool_limit=1500)
    upload = rig.uploads.open("rec/a.mp4", "video/mp4")
    upload.write(b"z" * 3200)  # three parts sealed, none uploaded yet
    assert rig.uploads.pending_bytes == 3200
    degraded = rig.uploads.degraded
    assert degraded is not None
    assert degraded.startswith("SpoolFull: 0 MiB wait for upload to memory bucket")
    assert part_path(upload_dir(tmp_path, "rec/a.mp4"), 3).exists()
    upload.close()
    rig.store.failures = [_outage(), _outage()]
    rig.requests.run()
    assert rig.uploads.pending_bytes == 0
    assert rig.uploads.degraded is None
    assert rig.store.objects["rec/a.mp4"] == b"z" * 3200


def test_a_refusal_is_given_up_and_the_bytes_stay_in_the_spool(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.store.failures = [StorageError("403 AccessDenied", retryable=False) for _ in range(6)]
    upload = rig.uploads.open("rec/a.mp4", "video/mp4")
    upload.write(b"w" * 1500)
    upload.close()
    rig.requests.run()
    with pytest.raises(UploadsIncomplete, match=r"rec/a.mp4.*403 AccessDenied"):
        rig.uploads.finish(timeout=0)
    assert part_path(upload_dir(tmp_path, "rec/a.mp4"), 1).read_bytes() == b"w" * 1000
