"""The operator's own least-privilege rules, as plain data (the Helm chart renders the same).

It may grant the bots only what it holds itself (Kubernetes refuses RBAC escalation), so
these rules are a superset of `manifests.bot_role`: a test checks it.
"""

from __future__ import annotations

from typing import Any

from tapedeck_bot.contract import GROUP, PLURAL
from tapedeck_operator.retention import TOMBSTONES

__all__ = ["api_rules", "operator_cluster_role", "operator_namespace_role", "operator_rules"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def operator_rules() -> list[dict[str, Any]]:
    return [
        # kopf watches Recordings and patches its finalizer and progress annotations.
        _rule([GROUP], [PLURAL], ["get", "list", "watch", "patch"]),
        _rule([GROUP], [f"{PLURAL}/status"], ["get", "patch"]),
        # Owner references with blockOwnerDeletion need it where OwnerReferencesPermission-
        # Enforcement is on (OpenShift, hardened clusters).
        _rule([GROUP], [f"{PLURAL}/finalizers"], ["update"]),
        _rule([""], ["pods"], ["get", "list", "watch", "create", "delete"]),
        # `get`: an existing one must belong to this Recording, not an earlier one of its name.
        _rule([""], ["serviceaccounts"], ["create", "get"]),
        _rule(["rbac.authorization.k8s.io"], ["roles", "rolebindings"], ["create", "get"]),
        # Only `get`: to check a Secret exists before a pod waits on it, and to grant bots `get`.
        _rule([""], ["secrets"], ["get"]),
        # composite.watermark: `get` checks a user's image and finds one fetched earlier;
        # `create` stores an image fetched from its url (owned by the Recording).
        _rule([""], ["configmaps"], ["get", "create"]),
        _rule(["", "events.k8s.io"], ["events"], ["create"]),
    ]


def api_rules() -> list[dict[str, Any]]:
    """tapedeck-api's: ask Kubernetes who a caller is and what they may do, and manage
    Recordings on their behalf. Nothing else: no Secrets, no pods."""
    return [
        _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        _rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
        # Recordings are found by uid, so by listing: no `get`.
        _rule([GROUP], [PLURAL], ["list", "create", "patch"]),
    ]


def operator_namespace_role(namespace: str, name: str = "tapedeck-operator") -> dict[str, Any]:
    """In the operator's own namespace only: the retention tombstones of deleted Recordings,
    one ConfigMap (`create` cannot be limited to a name; `get` and `patch` are)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "tapedeck-operator"},
        },
        "rules": [
            _rule([""], ["configmaps"], ["create"]),
            {**_rule([""], ["configmaps"], ["get", "patch"]), "resourceNames": [TOMBSTONES]},
        ],
    }


def operator_cluster_role(name: str = "tapedeck-operator") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "tapedeck-operator"}},
        "rules": operator_rules(),
    }
