"""Open the store a StorageSpec names."""

from __future__ import annotations

from tapedeck_bot.contract import StorageSpec, StorageType
from tapedeck_bot.storage.azure import AzureStore
from tapedeck_bot.storage.s3 import S3Store
from tapedeck_bot.storage.settings import Credentials, azure_target, s3_target
from tapedeck_bot.storage.store import ObjectStore

__all__ = ["open_store"]


def open_store(
    spec: StorageSpec, credentials: Credentials, *, verify: str | bool | None = None
) -> ObjectStore:
    """`verify`: a CA bundle path for private endpoints (AWS_CA_BUNDLE works too)."""
    if spec.type is StorageType.AZURE:
        return AzureStore(azure_target(spec, credentials), spec.bucket, credentials)
    return S3Store(s3_target(spec), spec.bucket, credentials, verify=verify)
