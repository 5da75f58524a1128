"""Stream outputs to object storage while recording.

`StreamingUpload` is an `OutputWriter`: the encoder appends bytes, which go to a part file in
the spool; each full part (all of the same size, as R2 requires) is uploaded in the
background while the next one fills. Closing the writer uploads the short last part and
completes the upload, so after a stop only one part is left to send. Failed requests are
retried with backoff and jitter for as long as it takes; the bytes wait in the spool.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from tapedeck_bot.clock import SYSTEM_CLOCK, Clock
from tapedeck_bot.storage.retry import call_with_retries
from tapedeck_bot.storage.spool import SpoolManifest, part_path, upload_dir, write_manifest
from tapedeck_bot.storage.store import ObjectStore, StorageError, UploadedPart, complete_once

__all__ = ["StreamingUpload", "UploadResult", "Uploads", "UploadsIncomplete"]

log = logging.getLogger("tapedeck_bot.storage")

T = TypeVar("T")
_MIB = 1024 * 1024
_MAX_REFUSALS = 5  # about 15 s of backoff


@dataclass(frozen=True)
class UploadResult:
    key: str
    bytes: int
    parts: int


class UploadsIncomplete(Exception):
    pass


class Uploads:
    """Every upload of one recording: a shared worker pool and spool accounting."""

    def __init__(
        self,
        store: ObjectStore,
        spool: Path,
        *,
        part_size: int,
        spool_limit: int,
        workers: int = 4,
        clock: Clock = SYSTEM_CLOCK,
        executor: Executor | None = None,
    ) -> None:
        """`executor` runs the requests (default: `workers` threads); `clock` times the
        retries' backoff."""
        self.store, self.spool = store, spool
        self.part_size, self.spool_limit = part_size, spool_limit
        self.clock = clock
        self._pool = executor or ThreadPoolExecutor(workers, thread_name_prefix="upload")
        self._lock = threading.Condition()
        self._uploads: list[StreamingUpload] = []
        self._pending = 0  # bytes in the spool the store does not have yet
        self._abandon = threading.Event()
        self.last_error: str | None = None

    def open(
        self, key: str, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> StreamingUpload:
        upload = StreamingUpload(self, key, content_type, dict(metadata or {}))
        with self._lock:
            self._uploads.append(upload)
        return upload

    @property
    def pending_bytes(self) -> int:
        with self._lock:
            return self._pending

    @property
    def degraded(self) -> str | None:
        """Why the recording is at risk, while more than the spool limit waits for upload."""
        with self._lock:
            if self._pending <= self.spool_limit:
                return None
            return (
                f"SpoolFull: {self._pending / _MIB:.0f} MiB wait for upload to "
                f"{self.store.description}, over the spool limit of "
                f"{self.spool_limit / _MIB:.0f} MiB (last error: {self.last_error}); "
                "recording goes on to local disk"
            )

    def _account(self, delta: int) -> None:
        with self._lock:
            was_over = self._pending > self.spool_limit
            self._pending += delta
            over = self._pending > self.spool_limit
        if over and not was_over:
            log.warning("uploads degraded", extra={"reason": self.degraded})
        elif was_over and not over:
            log.info("uploads caught up", extra={"pending_bytes": self._pending})

    def _retrying(self, what: str, request: Callable[[], T]) -> T:
        """Outages are waited out for as long as it takes; a refusal is given up after a few
        tries and the bytes stay in the spool for salvage. `abandon()` ends both."""

        def noted(exc: StorageError) -> None:
            self.last_error = str(exc)

        result = call_with_retries(
            request,
            what=what,
            stop=self._abandon,
            max_refusals=_MAX_REFUSALS,
            on_error=noted,
            clock=self.clock,
        )
        self.last_error = None
        return result

    def _submit(self, upload: StreamingUpload, fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except StorageError as exc:  # the spool keeps the bytes for salvage
                upload.failed(str(exc))
            except Exception as exc:
                log.exception("upload task failed")
                upload.failed(repr(exc))

        self._pool.submit(run)

    def _done(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def finish(self, timeout: float | None = None) -> list[UploadResult]:
        """Wait until every opened upload is complete in the store."""
        with self._lock:
            self._lock.wait_for(lambda: all(u.settled for u in self._uploads), timeout)
            unfinished = [u for u in self._uploads if u.result is None]
            if unfinished:
                errors = {u.error or f"not complete after {timeout} s" for u in unfinished}
                raise UploadsIncomplete(
                    f"{len(unfinished)} upload(s) not complete "
                    f"({', '.join(u.key for u in unfinished)}): {'; '.join(sorted(errors))}; "
                    f"their bytes stay in {self.spool} for the next attempt"
                )
            return [u.result for u in self._uploads if u.result is not None]

    def abandon(self) -> None:
        """Stop retrying (the pod is going away); what is not uploaded stays in the spool.
        Safe from a signal handler: it only sets an event."""
        self._abandon.set()

    def close(self) -> None:
        """Release the workers and spool files; after `finish`, or after `abandon`."""
        self._pool.shutdown(wait=True, cancel_futures=self._abandon.is_set())
        with self._lock:
            uploads = list(self._uploads)
        for upload in uploads:
            upload.release()


class StreamingUpload:
    """One output: an append-only writer whose bytes end up as one object."""

    def __init__(
        self, uploads: Uploads, key: str, content_type: str, metadata: dict[str, str]
    ) -> None:
        self.uploads, self.key = uploads, key
        self.part_size = uploads.part_size
        self.dir = upload_dir(uploads.spool, key)
        if self.dir.exists():
            shutil.rmtree(self.dir)  # a stale spool of the same key was salvaged or is junk
        self.manifest = SpoolManifest(key, content_type, metadata)
        write_manifest(self.dir, self.manifest)
        self._write_lock = threading.Lock()
        self._state = threading.Lock()
        self._create_lock = threading.Lock()
        self._number = 1
        self._file: BinaryIO = part_path(self.dir, 1).open("wb")
        self._in_part = 0
        self._written = 0
        self._closed = False
        self._upload_id: str | None = None
        self._uploaded: dict[int, UploadedPart] = {}
        self._outstanding = 0  # parts handed to the pool and not uploaded yet
        self.result: UploadResult | None = None
        self.error: str | None = None

    @property
    def settled(self) -> bool:
        return self.result is not None or self.error is not None

    def failed(self, error: str) -> None:
        if self.error is None:
            self.error = error
            log.error("upload given up", extra={"key": self.key, "error": error})
        self.uploads._done()

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, data: bytes) -> int:
        with self._write_lock:
            view = memoryview(data)
            while view:
                room = self.part_size - self._in_part
                chunk = view[:room]
                self._file.write(chunk)
                self._in_part += len(chunk)
                view = view[len(chunk) :]
                if self._in_part == self.part_size:
                    self._seal_part()
            self._file.flush()  # in the page cache, it survives this process being killed
            self._written += len(data)
        self.uploads._account(len(data))
        return len(data)

    def _seal_part(self) -> None:
        self._file.close()
        number, size = self._number, self._in_part
        with self._state:
            self._outstanding += 1
        self.uploads._submit(self, lambda: self._upload_part(number, size))
        self._number += 1
        self._in_part = 0
        self._file = part_path(self.dir, self._number).open("wb")

    def _ensure_upload(self) -> str:
        # Not under `_state`: creating may retry through an outage, and the encoder thread
        # must never wait for the network.
        with self._create_lock:
            if self._upload_id is None:
                self._upload_id = self.uploads._retrying(
                    f"create {self.key}",
                    lambda: self.uploads.store.create_upload(
                        self.key, self.manifest.content_type, self.manifest.metadata
                    ),
                )
                self.manifest = self.manifest.with_upload_id(self._upload_id)
                write_manifest(self.dir, self.manifest)
            return self._upload_id

    def _upload_part(self, number: int, size: int) -> None:
        upload_id = self._ensure_upload()
        path = part_path(self.dir, number)
        data = path.read_bytes()
        etag = self.uploads._retrying(
            f"part {number} of {self.key}",
            lambda: self.uploads.store.upload_part(self.key, upload_id, number, data),
        )
        path.unlink()
        with self._state:
            # The ETag of the latest upload of a part is the one to complete with.
            self._uploaded[number] = UploadedPart(number, etag, size)
            self._outstanding -= 1
            ready = self._closed and self._outstanding == 0
        self.uploads._account(-size)
        if ready:
            self._complete()

    def release(self) -> None:
        """Close the spool file; if not uploaded, what is there waits for salvage."""
        with self._write_lock:
            if not self._file.closed:
                self._file.close()

    def close(self) -> None:
        """Hand the last part to the uploader and return; `Uploads.finish` waits for it."""
        with self._write_lock:
            if self._closed:
                return
            try:
                self._file.close()
            except OSError as exc:  # e.g. a full disk: fail the upload, never hang finish()
                self.failed(f"spool write failed: {exc}")
                raise
            last_number, last_size = self._number, self._in_part
            with self._state:
                self._closed = True
                complete_now = False
                if last_size == 0 and last_number > 1:
                    part_path(self.dir, last_number).unlink()  # the data ended on a part edge
                    # Else the part still in flight completes the upload when it lands.
                    complete_now = self._outstanding == 0
                else:
                    self._outstanding += 1
        if last_number == 1:  # smaller than one part: one PUT, no multipart upload
            self.uploads._submit(self, lambda: self._put_whole(last_size))
        elif last_size:
            self.uploads._submit(self, lambda: self._upload_part(last_number, last_size))
        elif complete_now:
            self.uploads._submit(self, self._complete)

    def _put_whole(self, size: int) -> None:
        path = part_path(self.dir, 1)
        data = path.read_bytes()
        self.uploads._retrying(
            f"put {self.key}",
            lambda: self.uploads.store.put(
                self.key, data, self.manifest.content_type, self.manifest.metadata
            ),
        )
        self.uploads._account(-size)
        self._finished(UploadResult(self.key, size, 1))

    def _complete(self) -> None:
        upload_id = self._ensure_upload()
        parts = [self._uploaded[n] for n in sorted(self._uploaded)]
        size = sum(p.size for p in parts)
        m = self.manifest
        store = self.uploads.store

        def complete() -> None:
            complete_once(store, self.key, upload_id, parts, m.content_type, m.metadata)

        self.uploads._retrying(f"complete {self.key}", complete)
        self._finished(UploadResult(self.key, size, len(parts)))

    def _finished(self, result: UploadResult) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.result = result
        log.info(
            "upload complete",
            extra={"key": result.key, "bytes": result.bytes, "parts": result.parts},
        )
        self.uploads._done()
