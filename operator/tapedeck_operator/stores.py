"""Open a Recording's object stores with the credentials in its namespace's Secrets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tapedeck_bot.contract import StorageSpec
from tapedeck_bot.storage import ObjectStore, credentials_from_secret, open_store
from tapedeck_operator.kube import ClusterApi

__all__ = ["MissingSecret", "opened_storage"]


class MissingSecret(LookupError):
    pass


@contextmanager
def opened_storage(api: ClusterApi, namespace: str, storage: StorageSpec) -> Iterator[ObjectStore]:
    """The store, closed after use. Blocking (reads the Secret): use it in a thread."""
    name = storage.secret_ref.name
    data = api.read_secret(namespace, name)
    if data is None:
        raise MissingSecret(f"Secret {namespace}/{name} (its secretRef) does not exist")
    store = open_store(storage, credentials_from_secret(data, storage.type, name))
    try:
        yield store
    finally:
        store.close()
