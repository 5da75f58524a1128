"""The Recordings the API reads and writes, through the API server: thin I/O, no state."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tapedeck_bot.contract import GROUP, PLURAL, VERSION
from tapedeck_operator.kube import raw_json

__all__ = ["RecordingStore"]

_TIMEOUT = (5.0, 30.0)


class RecordingStore:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = client.CustomObjectsApi(api_client)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        namespace = manifest["metadata"]["namespace"]
        return raw_json(
            self._api.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                manifest,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
        )

    def list(self, namespace: str) -> list[dict[str, Any]]:
        answer = raw_json(
            self._api.list_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
        )
        items: list[dict[str, Any]] = answer.get("items", [])
        return items

    def by_uid(self, namespace: str, uid: str) -> dict[str, Any] | None:
        # A CRD's field selectors cover name and namespace only: the uid is found by listing.
        return next((r for r in self.list(namespace) if r["metadata"]["uid"] == uid), None)

    def set_state(self, recording: dict[str, Any], state: str) -> dict[str, Any]:
        metadata = recording["metadata"]
        return raw_json(
            self._api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                metadata["namespace"],
                PLURAL,
                metadata["name"],
                {"spec": {"state": state}},
                _content_type="application/merge-patch+json",
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
        )
