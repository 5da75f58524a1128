"""Where a StorageSpec points and how to talk to it: endpoints, regions and credentials.

Pure functions, so that the R2 quirks (region `auto`, checksums only when required) are
decided in one place and unit-tested without a network.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass

from tapedeck_bot.contract import STORAGE_SECRET_ENV, StorageSpec, StorageType

__all__ = [
    "AzureTarget",
    "Credentials",
    "MissingCredentials",
    "S3Target",
    "azure_target",
    "credentials_from_env",
    "credentials_from_secret",
    "object_key",
    "part_size_for",
    "recording_prefix",
    "s3_target",
]

_GCS_ENDPOINT = "https://storage.googleapis.com"


@dataclass(frozen=True)
class Credentials:
    """Keys from the storage Secret. `repr` hides them so they never reach a log."""

    access_key_id: str = ""
    secret_access_key: str = ""
    account_name: str = ""
    account_key: str = ""

    def __repr__(self) -> str:
        return "Credentials(***)"


class MissingCredentials(ValueError):
    pass


def _credentials(values: Mapping[str, str], storage_type: StorageType, origin: str) -> Credentials:
    creds = Credentials(
        access_key_id=values.get("accessKeyId", ""),
        secret_access_key=values.get("secretAccessKey", ""),
        account_name=values.get("accountName", ""),
        account_key=values.get("accountKey", ""),
    )
    needed = (
        ("accountName", "accountKey")
        if storage_type is StorageType.AZURE
        else ("accessKeyId", "secretAccessKey")
    )
    missing = [k for k in needed if not values.get(k)]
    if missing:
        raise MissingCredentials(
            f"storage type {storage_type} needs {' and '.join(needed)} in {origin}; "
            f"missing: {', '.join(missing)}"
        )
    return creds


def credentials_from_env(environ: Mapping[str, str], storage_type: StorageType) -> Credentials:
    """The bot pod's view: the Secret's keys arrive as TAPEDECK_STORAGE_* variables."""
    values = {key: environ.get(env, "") for key, env in STORAGE_SECRET_ENV.items()}
    names = ", ".join(STORAGE_SECRET_ENV.values())
    return _credentials(values, storage_type, f"the environment ({names})")


def credentials_from_secret(
    data: Mapping[str, str], storage_type: StorageType, secret: str
) -> Credentials:
    """The operator's view: a Secret's `data` (base64) as the API server returns it."""
    decoded = {k: base64.b64decode(v).decode() for k, v in data.items()}
    return _credentials(decoded, storage_type, f"Secret {secret}")


@dataclass(frozen=True)
class S3Target:
    endpoint_url: str | None  # None: AWS's own endpoint for the region
    region: str
    # R2 rejects botocore's default CRC32 trailer (aws-chunked over HTTPS) and its checksum
    # mode on GET; Spaces and GCS interop are treated the same way to be safe.
    checksums_when_required: bool
    path_style: bool
    # R2 refuses x-amz-acl, x-amz-tagging and SSE headers; we never send them to anyone.


def s3_target(spec: StorageSpec) -> S3Target:
    match spec.type:
        case StorageType.R2:
            host = f"{spec.account_id}.r2.cloudflarestorage.com"
            if spec.jurisdiction is not None:
                host = f"{spec.account_id}.{spec.jurisdiction}.r2.cloudflarestorage.com"
            return S3Target(spec.endpoint or f"https://{host}", "auto", True, True)
        case StorageType.DIGITALOCEAN:
            region = spec.region or "nyc3"
            endpoint = spec.endpoint or f"https://{region}.digitaloceanspaces.com"
            return S3Target(endpoint, region, True, True)
        case StorageType.GCS:
            return S3Target(spec.endpoint or _GCS_ENDPOINT, spec.region or "auto", True, True)
        case StorageType.S3:
            region = spec.region or "us-east-1"
            return S3Target(spec.endpoint, region, False, spec.endpoint is not None)
        case StorageType.AZURE:
            raise ValueError("Azure Blob is not an S3 endpoint: use azure_target")


@dataclass(frozen=True)
class AzureTarget:
    account_url: str  # e.g. https://acct.blob.core.windows.net or Azurite's /devstoreaccount1


def azure_target(spec: StorageSpec, credentials: Credentials) -> AzureTarget:
    url = spec.endpoint or f"https://{credentials.account_name}.blob.core.windows.net"
    return AzureTarget(url.rstrip("/"))


def recording_prefix(path: str | None, recording_id: str) -> str:
    """`{path}/{recordingId}/`: every object of one recording, and nothing else, under it."""
    base = (path or "").strip("/")
    return f"{base}/{recording_id}/" if base else f"{recording_id}/"


def object_key(path: str | None, recording_id: str, name: str) -> str:
    return recording_prefix(path, recording_id) + name


MAX_PARTS = 10_000  # per multipart upload, on S3 and R2
_MIB = 1024 * 1024
_CEILING_BYTES_PER_S = 1_000_000  # 8 Mbit/s, above any composite's target bitrate


def part_size_for(max_seconds: float, configured: int) -> int:
    """The configured part size, grown in whole MiB until the longest recording allowed fits
    in 10,000 parts (with 10% to spare) even at 8 Mbit/s: parts cannot change size midway."""
    needed = math.ceil(max_seconds * _CEILING_BYTES_PER_S * 1.1 / MAX_PARTS / _MIB) * _MIB
    return max(configured, needed)
