"""The tests' reads of the API server: objects as its JSON, or None once they are gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tapedeck_bot.contract import GROUP, PLURAL, VERSION
from tapedeck_dev.kubeclient import MERGE_PATCH, read_json

__all__ = ["Recordings", "read"]


def read(call: Callable[..., object], *args: str) -> dict[str, Any] | None:
    """`call(*args)` made with `_preload_content=False`, as JSON; None on 404 (gone).

    For example `read(core.read_namespaced_pod, name, namespace)`.
    """
    try:
        return read_json(call(*args, _preload_content=False))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


class Recordings:
    """The Recordings of one namespace, as the API server's JSON (merge patches)."""

    def __init__(self, kube: client.ApiClient, namespace: str) -> None:
        self._api = client.CustomObjectsApi(kube)
        self._namespace = namespace

    def create(self, body: dict[str, Any]) -> None:
        self._api.create_namespaced_custom_object(GROUP, VERSION, self._namespace, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self._api.get_namespaced_custom_object(
            GROUP, VERSION, self._namespace, PLURAL, name
        )
        return obj

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self._api.patch_namespaced_custom_object(
            GROUP, VERSION, self._namespace, PLURAL, name, body, _content_type=MERGE_PATCH
        )

    def patch_status(self, name: str, body: dict[str, Any]) -> None:
        self._api.patch_namespaced_custom_object_status(
            GROUP, VERSION, self._namespace, PLURAL, name, body, _content_type=MERGE_PATCH
        )
