"""ObjectStore over the S3 API (R2, AWS S3, DigitalOcean Spaces, GCS interoperability)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tapedeck_bot.storage.settings import Credentials, S3Target
from tapedeck_bot.storage.store import ObjectInfo, PendingUpload, StorageError, UploadedPart

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = ["S3Store", "s3_client_config"]

T = TypeVar("T")

# Errors that may go away on their own; anything else (AccessDenied, NoSuchBucket...) needs
# a person, though the uploader keeps the bytes and tries again anyway.
_RETRYABLE_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "503"}


def s3_client_config(target: S3Target) -> Config:
    checksums: Literal["when_required", "when_supported"] = (
        "when_required" if target.checksums_when_required else "when_supported"
    )
    return Config(
        signature_version="s3v4",
        request_checksum_calculation=checksums,
        response_checksum_validation=checksums,
        s3={"addressing_style": "path" if target.path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
    )


class S3Store:
    def __init__(
        self,
        target: S3Target,
        bucket: str,
        credentials: Credentials,
        *,
        verify: str | bool | None = None,
        client: S3Client | None = None,
    ) -> None:
        self.target, self.bucket = target, bucket
        self.client: S3Client = client or boto3.client(
            "s3",
            endpoint_url=target.endpoint_url,
            region_name=target.region,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            config=s3_client_config(target),
            verify=verify,
        )

    @property
    def description(self) -> str:
        return (
            f"s3 bucket {self.bucket} at {self.target.endpoint_url or 'AWS ' + self.target.region}"
        )

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ClientError as exc:
            error: Any = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            raise StorageError(
                f"{what} on {self.description}: {code} {error.get('Message', '')}".strip(),
                retryable=code in _RETRYABLE_CODES or status >= 500,
                code=code,
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"{what} on {self.description}: {exc}", retryable=True) from exc

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call(
                "CreateBucket",
                lambda: self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.target.region},  # type: ignore[typeddict-item]
                ),
            )

    def create_upload(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str:
        answer = self._call(
            "CreateMultipartUpload",
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, Metadata=dict(metadata)
            ),
        )
        return answer["UploadId"]

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        answer = self._call(
            f"UploadPart {number} of {key}",
            lambda: self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            ),
        )
        return answer["ETag"]

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[UploadedPart],
        content_type: str,
        metadata: Mapping[str, str],
    ) -> None:
        listed = [{"PartNumber": p.number, "ETag": p.etag} for p in parts]
        self._call(
            f"CompleteMultipartUpload of {key}",
            lambda: self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},  # type: ignore[typeddict-item]
            ),
        )

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._call(
            f"AbortMultipartUpload of {key}",
            lambda: self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            ),
        )

    def list_uploads(self, prefix: str) -> list[PendingUpload]:
        def listing() -> list[PendingUpload]:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [
                PendingUpload(u["Key"], u["UploadId"])
                for page in pages
                for u in page.get("Uploads", [])
            ]

        return self._call("ListMultipartUploads", listing)

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        def listing() -> list[UploadedPart]:
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            return [
                UploadedPart(p["PartNumber"], p["ETag"], p["Size"])
                for page in pages
                for p in page.get("Parts", [])
            ]

        return self._call(f"ListParts of {key}", listing)

    def put(self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        self._call(
            f"PutObject {key}",
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata=dict(metadata),
            ),
        )

    def head(self, key: str) -> ObjectInfo:
        answer = self._call(
            f"HeadObject {key}", lambda: self.client.head_object(Bucket=self.bucket, Key=key)
        )
        return ObjectInfo(
            key, answer["ContentLength"], answer.get("ContentType", ""), answer.get("Metadata", {})
        )

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        def listing() -> list[ObjectInfo]:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [
                ObjectInfo(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])
            ]

        return self._call("ListObjectsV2", listing)

    def read(self, key: str, chunk_size: int) -> Iterator[bytes]:
        answer = self._call(
            f"GetObject {key}", lambda: self.client.get_object(Bucket=self.bucket, Key=key)
        )
        body = answer["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        except BotoCoreError as exc:  # the body streams after GetObject has answered
            raise StorageError(
                f"reading {key} on {self.description}: {exc}", retryable=True
            ) from exc
        finally:
            body.close()

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at a time
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            answer = self._call(
                "DeleteObjects",
                lambda batch=batch: self.client.delete_objects(  # type: ignore[misc]
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                ),
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StorageError(
                    f"DeleteObjects on {self.description}: {first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message', '')}",
                    retryable=False,
                )

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        try:
            answer = self._call(
                "GetBucketLifecycleConfiguration",
                lambda: self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket),
            )
        except StorageError as exc:
            if exc.code == "NoSuchLifecycleConfiguration":
                return []
            raise
        return [dict(rule) for rule in answer.get("Rules", [])]

    def put_lifecycle_rule(self, rule: Mapping[str, Any]) -> None:
        """Add `rule` (see retention.lifecycle_rule), replacing one with the same ID and
        keeping the bucket's other rules."""
        rules = [r for r in self.lifecycle_rules() if r.get("ID") != rule["ID"]]
        self._put_lifecycle([*rules, dict(rule)])

    def remove_lifecycle_rule(self, rule_id: str) -> None:
        rules = self.lifecycle_rules()
        kept = [r for r in rules if r.get("ID") != rule_id]
        if len(kept) == len(rules):
            return
        if kept:
            self._put_lifecycle(kept)
        else:
            self._call(
                "DeleteBucketLifecycle",
                lambda: self.client.delete_bucket_lifecycle(Bucket=self.bucket),
            )

    def _put_lifecycle(self, rules: list[dict[str, Any]]) -> None:
        self._call(
            "PutBucketLifecycleConfiguration",
            lambda: self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={"Rules": rules},  # type: ignore[typeddict-item]
            ),
        )

    def presign_get(self, key: str, expires: dt.timedelta) -> str:
        return self._call(
            "presign",
            lambda: self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=int(expires.total_seconds()),
            ),
        )

    def close(self) -> None:
        self.client.close()
