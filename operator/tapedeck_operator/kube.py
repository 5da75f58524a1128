"""The operator's calls to the API server, through the official client: the only module that
imports `kubernetes`. Calls block; handlers run them with `asyncio.to_thread`.

Answers are plain dicts (the raw JSON), which the pure modules read; 409 on create means the
object is already there (handlers are retried, so creation must be idempotent).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tapedeck_bot.contract import GROUP, PLURAL, VERSION

__all__ = [
    "ClusterApi",
    "Conflict",
    "InCluster",
    "KubeClusterApi",
    "NotFound",
    "api_client",
    "config_map_contents",
    "in_cluster",
    "raw_json",
]

_TIMEOUT = (5.0, 30.0)


class Conflict(RuntimeError):
    """A resourceVersion precondition failed."""


class NotFound(RuntimeError):
    pass


class ClusterApi(Protocol):
    def create(self, obj: dict[str, Any]) -> None:
        """Create a namespaced ServiceAccount, Role, RoleBinding, Pod or ConfigMap. One that
        exists with the same owner is fine (handlers are retried); another owner's raises
        Conflict."""

    def delete_pod(self, namespace: str, name: str) -> None: ...

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's `data` (base64 values), or None if there is no such Secret."""

    def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        """A ConfigMap's data; empty if there is no such ConfigMap."""

    def config_map_files(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """Every key of a ConfigMap (`data` and `binaryData`) as the bytes a pod's volume
        holds, or None if there is no such ConfigMap."""

    def merge_config_map(
        self, namespace: str, name: str, labels: dict[str, str], data: dict[str, str | None]
    ) -> None:
        """Set (or with None, remove) keys of a ConfigMap, creating it if needed."""

    def get_recording(self, namespace: str, name: str) -> dict[str, Any]: ...

    def patch_recording_status(
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]: ...


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials in a pod; otherwise `kubeconfig` or $KUBECONFIG."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class InCluster:
    """The pod's own ServiceAccount credentials, for kopf's login."""

    server: str
    ca_path: str | None
    token: str


def in_cluster() -> InCluster | None:
    """The pod's ServiceAccount as the official client reads it: the API server from
    $KUBERNETES_SERVICE_HOST and _PORT, which kopf's own reader replaces with
    kubernetes.default.svc (a name only cluster DNS knows). None outside a pod."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        return None
    token = str(configuration.api_key["BearerToken"]).split(" ", 1)[-1]
    return InCluster(configuration.host, configuration.ssl_ca_cert, token)


def _owners(obj: dict[str, Any]) -> set[str]:
    return {ref["uid"] for ref in obj["metadata"].get("ownerReferences") or []}


def raw_json(response: Any) -> dict[str, Any]:
    """The JSON of an answer read with `_preload_content=False` (orjson: a list of 1000
    Recordings is 1.5 MB, which the standard library parses three times slower)."""
    data: dict[str, Any] = orjson.loads(response.data)
    return data


def config_map_contents(config_map: dict[str, Any]) -> dict[str, bytes]:
    """Every key of a ConfigMap, `data` and `binaryData`, as the bytes a volume holds."""
    files = {k: v.encode() for k, v in (config_map.get("data") or {}).items()}
    binary = config_map.get("binaryData") or {}
    return files | {k: base64.b64decode(v) for k, v in binary.items()}


def _read_or_none(read: Callable[..., Any], namespace: str, name: str) -> dict[str, Any] | None:
    """A Secret or ConfigMap, or None if it does not exist."""
    try:
        response = read(name, namespace, _preload_content=False, _request_timeout=_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return raw_json(response)


def _data_or_none(read: Callable[..., Any], namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's or ConfigMap's `data`, or None if it does not exist."""
    obj = _read_or_none(read, namespace, name)
    if obj is None:
        return None
    data: dict[str, str] = obj.get("data") or {}
    return data


class KubeClusterApi:
    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)
        self._rbac = client.RbacAuthorizationV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    def create(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        calls: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "ServiceAccount": (
                self._core.create_namespaced_service_account,
                self._core.read_namespaced_service_account,
            ),
            "Pod": (self._core.create_namespaced_pod, self._core.read_namespaced_pod),
            "ConfigMap": (
                self._core.create_namespaced_config_map,
                self._core.read_namespaced_config_map,
            ),
            "Role": (self._rbac.create_namespaced_role, self._rbac.read_namespaced_role),
            "RoleBinding": (
                self._rbac.create_namespaced_role_binding,
                self._rbac.read_namespaced_role_binding,
            ),
        }
        create, read = calls[obj["kind"]]
        try:
            create(meta["namespace"], obj, _preload_content=False, _request_timeout=_TIMEOUT)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = raw_json(read(meta["name"], meta["namespace"], _preload_content=False))
        if _owners(existing) != _owners(obj):
            # A deleted Recording of the same name left it for the garbage collector.
            raise Conflict(f"{obj['kind']} {meta['name']} still belongs to an earlier Recording")

    def delete_pod(self, namespace: str, name: str) -> None:
        try:
            self._core.delete_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=_TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return _data_or_none(self._core.read_namespaced_secret, namespace, name)

    def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        return _data_or_none(self._core.read_namespaced_config_map, namespace, name) or {}

    def config_map_files(self, namespace: str, name: str) -> dict[str, bytes] | None:
        config_map = _read_or_none(self._core.read_namespaced_config_map, namespace, name)
        return None if config_map is None else config_map_contents(config_map)

    def merge_config_map(
        self, namespace: str, name: str, labels: dict[str, str], data: dict[str, str | None]
    ) -> None:
        patch = {"metadata": {"labels": labels}, "data": data}
        try:
            self._core.patch_namespaced_config_map(
                name,
                namespace,
                patch,
                _content_type="application/merge-patch+json",
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
            return
        except ApiException as exc:
            if exc.status != 404:
                raise
        kept = {k: v for k, v in data.items() if v is not None}
        body: Any = {"metadata": {"name": name, "namespace": namespace, "labels": labels}}
        body["data"] = kept
        try:
            self._core.create_namespaced_config_map(
                namespace, body, _preload_content=False, _request_timeout=_TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.merge_config_map(namespace, name, labels, data)  # created meanwhile

    def get_recording(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            response = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"Recording {namespace}/{name}") from exc
            raise
        return raw_json(response)

    def patch_recording_status(
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            response = self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body,
                _content_type="application/merge-patch+json",
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(exc.reason or "conflict") from exc
            if exc.status == 404:
                raise NotFound(f"Recording {namespace}/{name}") from exc
            raise
        return raw_json(response)
