"""ObjectStore over Azure Blob: a block blob whose staged blocks are the upload's parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobSasPermissions,
    BlobServiceClient,
    ContentSettings,
    generate_blob_sas,
)

from tapedeck_bot.storage.settings import AzureTarget, Credentials
from tapedeck_bot.storage.store import ObjectInfo, PendingUpload, StorageError, UploadedPart

__all__ = ["AzureStore"]

T = TypeVar("T")

# Azure has no upload id: the uncommitted blocks belong to the blob itself.
_BLOCKS = "blocks"


def _block_id(number: int) -> str:
    return f"{number:08d}"  # block ids of one blob must all have the same length


class AzureStore:
    def __init__(self, target: AzureTarget, container: str, credentials: Credentials) -> None:
        self.target, self.container = target, container
        self._account_name, self._account_key = credentials.account_name, credentials.account_key
        service = BlobServiceClient(
            target.account_url,
            credential={
                "account_name": credentials.account_name,
                "account_key": credentials.account_key,
            },
            retry_total=2,
            connection_timeout=5,
            read_timeout=60,
        )
        self.client = service.get_container_client(container)

    @property
    def bucket(self) -> str:
        return self.container

    @property
    def description(self) -> str:
        return f"azure container {self.container} at {self.target.account_url}"

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except HttpResponseError as exc:
            status = exc.status_code or 0
            raise StorageError(
                f"{what} on {self.description}: {status} {exc.reason or ''}".strip(),
                retryable=status >= 500 or status in (408, 429),
                code=str(getattr(exc, "error_code", "") or ""),
            ) from exc
        except AzureError as exc:
            raise StorageError(f"{what} on {self.description}: {exc}", retryable=True) from exc

    def ensure_bucket(self) -> None:
        try:
            self.client.create_container()
        except ResourceExistsError:
            pass
        except AzureError as exc:
            raise StorageError(
                f"CreateContainer on {self.description}: {exc}", retryable=True
            ) from exc

    def create_upload(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str:
        return _BLOCKS

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        block = _block_id(number)
        self._call(
            f"PutBlock {number} of {key}",
            lambda: self.client.get_blob_client(key).stage_block(
                block, data, validate_content=True
            ),
        )
        return block

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[UploadedPart],
        content_type: str,
        metadata: Mapping[str, str],
    ) -> None:
        blocks = [BlobBlock(block_id=p.etag) for p in parts]
        self._call(
            f"PutBlockList of {key}",
            lambda: self.client.get_blob_client(key).commit_block_list(
                blocks,
                content_settings=ContentSettings(content_type=content_type),
                metadata=dict(metadata),
            ),
        )

    def abort_upload(self, key: str, upload_id: str) -> None:
        blob = self.client.get_blob_client(key)
        try:
            blob.get_blob_properties()
            return  # a committed blob stays whole; its stray blocks expire in 7 days
        except ResourceNotFoundError:
            pass
        # Committing no blocks drops the staged ones; then the empty blob goes.
        self._call(f"abort {key}", lambda: blob.commit_block_list([]))
        self._call(f"DeleteBlob {key}", blob.delete_blob)

    def list_uploads(self, prefix: str) -> list[PendingUpload]:
        def listing() -> list[PendingUpload]:
            names = [
                b.name
                for b in self.client.list_blobs(
                    name_starts_with=prefix, include=["uncommittedblobs"]
                )
            ]
            return [PendingUpload(n, _BLOCKS) for n in names if self._uncommitted(n)]

        return self._call("ListBlobs", listing)

    def _uncommitted(self, key: str) -> list[BlobBlock]:
        try:
            _, uncommitted = self.client.get_blob_client(key).get_block_list("uncommitted")
        except ResourceNotFoundError:
            return []
        return list(uncommitted)

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        blocks = self._call(f"GetBlockList of {key}", lambda: self._uncommitted(key))
        parts = [UploadedPart(int(b.id), b.id, b.size) for b in blocks]
        return sorted(parts, key=lambda p: p.number)

    def put(self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        self._call(
            f"PutBlob {key}",
            lambda: self.client.upload_blob(
                key,
                data,
                overwrite=True,
                content_settings=ContentSettings(content_type=content_type),
                metadata=dict(metadata),
            ),
        )

    def head(self, key: str) -> ObjectInfo:
        props = self._call(
            f"GetBlobProperties {key}", self.client.get_blob_client(key).get_blob_properties
        )
        return ObjectInfo(
            key, props.size, props.content_settings.content_type or "", props.metadata
        )

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        return self._call(
            "ListBlobs",
            lambda: [
                ObjectInfo(b.name, b.size) for b in self.client.list_blobs(name_starts_with=prefix)
            ],
        )

    def read(self, key: str, chunk_size: int) -> Iterator[bytes]:
        stream = self._call(
            f"GetBlob {key}",
            lambda: self.client.get_blob_client(key).download_blob(max_concurrency=1),
        )
        try:
            yield from stream.chunks()
        except AzureError as exc:  # the body streams after GetBlob has answered
            raise StorageError(
                f"reading {key} on {self.description}: {exc}", retryable=True
            ) from exc

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                self._call(f"DeleteBlob {key}", self.client.get_blob_client(key).delete_blob)
            except StorageError as exc:
                if not isinstance(exc.__cause__, ResourceNotFoundError):
                    raise

    def presign_get(self, key: str, expires: dt.timedelta) -> str:
        sas = generate_blob_sas(
            account_name=self._account_name,
            container_name=self.container,
            blob_name=key,
            account_key=self._account_key,
            permission=BlobSasPermissions(read=True),
            expiry=dt.datetime.now(dt.UTC) + expires,
        )
        return f"{self.client.get_blob_client(key).url}?{sas}"

    def close(self) -> None:
        self.client.close()
