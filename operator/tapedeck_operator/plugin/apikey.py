"""What `kubectl tapedeck api-key` creates: a ServiceAccount whose Role allows some verbs on
Recordings in one namespace. Its token is then a key for tapedeck-api, which asks Kubernetes
about every call; deleting the RoleBinding revokes it. Pure: objects and text, no I/O."""

from __future__ import annotations

import json
import shlex
from typing import Any

from tapedeck_bot.contract import GROUP, PLURAL

__all__ = ["API_VERBS", "api_key_objects", "curl_example"]

# tapedeck-api's verbs: create to start, list to list, get to read, patch to act.
API_VERBS = ("create", "list", "get", "patch")


def api_key_objects(name: str, namespace: str, verbs: list[str]) -> list[dict[str, Any]]:
    unknown = sorted(set(verbs) - set(API_VERBS))
    if unknown:
        raise ValueError(f"--verbs: {', '.join(unknown)}: choose from {', '.join(API_VERBS)}")
    metadata = {"name": name, "namespace": namespace, "labels": {"tapedeck.io/api-key": "true"}}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata,
            "rules": [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": verbs}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def curl_example(api_url: str, app_id: str, meeting_id: str) -> str:
    """Starting a recording of `meeting_id` with the key in $TOKEN, as RealtimeKit's API."""
    url = f"{api_url.rstrip('/')}/accounts/-/realtime/kit/{app_id}/recordings"
    body = json.dumps({"meeting_id": meeting_id})
    return (
        f'curl -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        f"-d {shlex.quote(body)} {shlex.quote(url)}"
    )
