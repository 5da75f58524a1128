"""Resolve a container's `env` the way the kubelet does, with the API lookups injected."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["EnvError", "expand", "resolve_env"]

# (kind, namespace, name) -> the object's `data` (Secret values already base64-decoded).
DataLookup = Callable[[str, str, str], Mapping[str, str] | None]


class EnvError(ValueError):
    """A container's env refers to something that does not exist (CreateContainerConfigError)."""


_FIELD_PATHS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "metadata.name": lambda pod: pod["metadata"]["name"],
    "metadata.namespace": lambda pod: pod["metadata"]["namespace"],
    "metadata.uid": lambda pod: pod["metadata"]["uid"],
    "spec.nodeName": lambda pod: pod["spec"].get("nodeName", ""),
    "spec.serviceAccountName": lambda pod: pod["spec"].get("serviceAccountName", "default"),
    "status.podIP": lambda pod: "127.0.0.1",
    "status.hostIP": lambda pod: "127.0.0.1",
}


def _from_key_ref(
    kind: str, ref: Mapping[str, Any], namespace: str, lookup: DataLookup
) -> str | None:
    data = lookup(kind, namespace, ref["name"])
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return None
        what = "not found" if data is None else f"has no key {ref['key']!r}"
        raise EnvError(f"{kind} {namespace}/{ref['name']} {what}")
    return data[ref["key"]]


def _field_ref(ref: Mapping[str, Any], pod: Mapping[str, Any]) -> str:
    path = ref["fieldPath"]
    if path.startswith(("metadata.labels['", "metadata.annotations['")):
        section, key = path.split("['", 1)
        return str(pod["metadata"].get(section.split(".")[1], {}).get(key.rstrip("']"), ""))
    if path not in _FIELD_PATHS:
        raise EnvError(f"fieldRef {path!r} is not supported by the process kubelet")
    return str(_FIELD_PATHS[path](pod))


def resolve_env(
    container: Mapping[str, Any], pod: Mapping[str, Any], lookup: DataLookup
) -> dict[str, str]:
    """The container's environment: `value`, `secretKeyRef`, `configMapKeyRef`, `fieldRef`.

    Later entries see earlier ones through `$(VAR)` expansion, as in Kubernetes.
    """
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        value: str | None
        if source is None:
            value = expand(var.get("value", ""), env)
        elif "secretKeyRef" in source:
            value = _from_key_ref("Secret", source["secretKeyRef"], namespace, lookup)
        elif "configMapKeyRef" in source:
            value = _from_key_ref("ConfigMap", source["configMapKeyRef"], namespace, lookup)
        elif "fieldRef" in source:
            value = _field_ref(source["fieldRef"], pod)
        else:
            raise EnvError(f"env {var['name']}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[var["name"]] = value
    return env


def expand(text: str, env: Mapping[str, str]) -> str:
    """Substitute `$(NAME)` references, as Kubernetes does in env values, command and args."""
    for name, value in env.items():
        text = text.replace(f"$({name})", value)
    return text
