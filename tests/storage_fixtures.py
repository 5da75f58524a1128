"""Fixtures: real object stores on 127.0.0.1: SeaweedFS (S3, HTTP and HTTPS), Miniflare's
local R2 (HTTPS) and Azurite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapedeck_bot.contract import StorageSpec
from tapedeck_bot.storage import Credentials, ObjectStore, open_store
from tapedeck_dev.storage_servers import Azurite, Miniflare, SeaweedFS
from tests.storage.media import noise_recording


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("seaweed"), https=True)
    server.up()
    yield server
    server.down()


@pytest.fixture(scope="session")
def miniflare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Miniflare]:
    server = Miniflare(tmp_path_factory.mktemp("miniflare"))
    server.up()
    yield server
    server.down()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    server.up()
    yield server
    server.down()


def s3_spec(endpoint: str, bucket: str, storage_type: str = "s3", **extra: str) -> StorageSpec:
    fields = {"region": "us-east-1"} if storage_type == "s3" else {}
    return StorageSpec.model_validate(
        {
            "type": storage_type,
            "bucket": bucket,
            "endpoint": endpoint,
            "secretRef": {"name": "storage"},
            **fields,
            **extra,
        }
    )


def seaweed_store(
    server: SeaweedFS, bucket: str | None = None, storage_type: str = "s3", **extra: str
) -> ObjectStore:
    spec = s3_spec(server.endpoint, bucket or f"rec-{uuid.uuid4().hex[:10]}", storage_type, **extra)
    store = open_store(spec, Credentials(server.access_key, server.secret_key))
    store.ensure_bucket()
    return store


def azure_store(server: Azurite, container: str | None = None) -> ObjectStore:
    spec = StorageSpec.model_validate(
        {
            "type": "azure",
            "bucket": container or f"rec-{uuid.uuid4().hex[:10]}",
            "endpoint": server.endpoint,
            "secretRef": {"name": "storage"},
        }
    )
    store = open_store(
        spec, Credentials(account_name=server.account_name, account_key=server.account_key)
    )
    store.ensure_bucket()
    return store


@pytest.fixture
def s3(seaweed: SeaweedFS) -> Iterator[ObjectStore]:
    """A fresh bucket of its own for each test."""
    store = seaweed_store(seaweed)
    yield store
    store.close()


@pytest.fixture
def closing() -> Iterator[list[ObjectStore]]:
    """Stores a test opens itself, closed after it (botocore leaks sockets otherwise)."""
    stores: list[ObjectStore] = []
    yield stores
    for store in stores:
        store.close()


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 20 s fragmented MP4 (~16 MiB) and a 20 s WebM (~20 MiB), made once."""
    directory = tmp_path_factory.mktemp("media")
    return {ext: noise_recording(directory / f"noise.{ext}", 20) for ext in ("mp4", "webm")}
