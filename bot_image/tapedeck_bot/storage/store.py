"""One interface over S3-compatible stores and Azure Blob: multipart uploads, reads, deletes.

An "upload" is an S3 multipart upload, or on Azure the uncommitted blocks of a block blob.
Completing it is atomic: the object appears whole or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "ObjectInfo",
    "ObjectStore",
    "PendingUpload",
    "StorageError",
    "UploadedPart",
    "complete_once",
]


class StorageError(Exception):
    """A storage request failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, code: str = "") -> None:
        super().__init__(message)
        self.retryable, self.code = retryable, code  # code: the service's, e.g. NoSuchUpload


@dataclass(frozen=True)
class UploadedPart:
    number: int  # 1-based
    etag: str
    size: int


@dataclass(frozen=True)
class PendingUpload:
    key: str
    upload_id: str


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str = ""
    metadata: Mapping[str, str] | None = None


class ObjectStore(Protocol):
    @property
    def bucket(self) -> str:
        """The bucket's name (on Azure, the container's)."""
        ...

    @property
    def description(self) -> str:
        """Provider, endpoint and bucket, for messages (never credentials)."""
        ...

    def ensure_bucket(self) -> None: ...

    def create_upload(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str: ...

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str: ...

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[UploadedPart],
        content_type: str,
        metadata: Mapping[str, str],
    ) -> None: ...

    def abort_upload(self, key: str, upload_id: str) -> None: ...

    def list_uploads(self, prefix: str) -> list[PendingUpload]: ...

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]: ...

    def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None: ...

    def head(self, key: str) -> ObjectInfo: ...

    def list_objects(self, prefix: str) -> list[ObjectInfo]: ...

    def read(self, key: str, chunk_size: int) -> Iterator[bytes]: ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def presign_get(self, key: str, expires: dt.timedelta) -> str: ...

    def close(self) -> None:
        """Release the store's connections."""
        ...


def complete_once(
    store: ObjectStore,
    key: str,
    upload_id: str,
    parts: Sequence[UploadedPart],
    content_type: str,
    metadata: Mapping[str, str],
) -> None:
    """Complete an upload, safe to retry: a retry after a lost answer finds the upload gone
    (NoSuchUpload) and the object there, which is success."""
    try:
        store.complete_upload(key, upload_id, parts, content_type, metadata)
    except StorageError as exc:
        if exc.code != "NoSuchUpload" or store.head(key).size != sum(p.size for p in parts):
            raise
