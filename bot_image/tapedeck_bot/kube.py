"""The bot's one seam to the API server: its own Recording, through the official client.

Only this module imports `kubernetes`. Its calls block, so they run on the reporter's and
the watcher's threads, never on the event loop that carries media.

Errors::

    RecordingApiError
     ├── ApiUnavailable   the API server could not be reached or answered 5xx/429: retry later
     ├── Conflict         the resourceVersion precondition failed: re-read and merge
     └── ApiRefused       any other answer (403, 404, 422): retrying the same call won't help
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol, cast

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tapedeck_bot.contract import GROUP, PLURAL, VERSION

__all__ = [
    "ApiRefused",
    "ApiUnavailable",
    "Conflict",
    "KubeRecordingApi",
    "RecordingApi",
    "RecordingApiError",
]

# (connect, read) seconds: an API server that went away must not hang a thread for minutes.
_TIMEOUT = (5.0, 20.0)
_WATCH_SECONDS = 60


class RecordingApiError(RuntimeError):
    pass


class ApiUnavailable(RecordingApiError):
    pass


class Conflict(RecordingApiError):
    pass


class ApiRefused(RecordingApiError):
    pass


class RecordingApi(Protocol):
    """One Recording, as its bot may see it: read, watch, and patch its status."""

    def get(self) -> dict[str, Any]: ...

    def watch(self, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) from `resource_version` on, until the server ends the watch."""

    def patch_status(
        self, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        """A JSON merge patch of `.status`; with `resource_version`, only if it is current."""


def _translate(exc: Exception) -> RecordingApiError:
    if isinstance(exc, ApiException):
        status = exc.status or 0
        if status == 409:
            return Conflict(exc.reason or "conflict")
        if status >= 500 or status == 429 or status == 0:
            return ApiUnavailable(f"{status} {exc.reason}")
        return ApiRefused(f"{status} {exc.reason}: {exc.body}")
    return ApiUnavailable(f"{type(exc).__name__}: {exc}")


_TRANSPORT_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


class KubeRecordingApi:
    """`RecordingApi` over the official client, with the pod's in-cluster credentials."""

    def __init__(self, namespace: str, name: str, api_client: client.ApiClient) -> None:
        self.namespace, self.name = namespace, name
        self._api = client.CustomObjectsApi(api_client)

    @classmethod
    def in_cluster(cls, namespace: str, name: str) -> KubeRecordingApi:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(namespace, name, client.ApiClient(configuration))

    def get(self) -> dict[str, Any]:
        try:
            obj = self._api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, _request_timeout=_TIMEOUT
            )
        except _TRANSPORT_ERRORS as exc:
            raise _translate(exc) from exc
        return cast(dict[str, Any], obj)

    def watch(self, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self._api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            field_selector=f"metadata.name={self.name}",
            resource_version=resource_version,
            timeout_seconds=_WATCH_SECONDS,
            _request_timeout=(_TIMEOUT[0], _WATCH_SECONDS + 10),
        )
        try:
            for event in stream:
                yield event["type"], event["raw_object"]
        except _TRANSPORT_ERRORS as exc:
            raise _translate(exc) from exc
        except (ValueError, json.JSONDecodeError) as exc:  # a stream cut mid-line
            raise ApiUnavailable(str(exc)) from exc

    def patch_status(
        self, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:  # a merge patch carrying it is a precondition
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            obj = self._api.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                self.name,
                body,
                _content_type="application/merge-patch+json",
                _request_timeout=_TIMEOUT,
            )
        except _TRANSPORT_ERRORS as exc:
            raise _translate(exc) from exc
        return cast(dict[str, Any], obj)
