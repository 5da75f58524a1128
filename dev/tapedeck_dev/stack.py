"""The whole system on one machine: control plane, process kubelet and operator (dev only).

The operator runs as it would in a cluster: as a ServiceAccount bound to its own
least-privilege ClusterRole (`tapedeck_operator.rbac`), never as the admin.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tapedeck_bot.contract import GROUP, PLURAL
from tapedeck_bot.contract.crd import render_crd
from tapedeck_dev.cluster import write_kubeconfig
from tapedeck_operator.rbac import operator_cluster_role, operator_namespace_role

__all__ = [
    "OPERATOR_NAMESPACE",
    "create_restricted_namespace",
    "install_operator",
    "kubectl_output",
    "kubelet_command",
    "operator_command",
    "wait_established",
    "write_local_settings",
]

OPERATOR_NAMESPACE = "tapedeck-system"
_ACCOUNT = "tapedeck-operator"


def kubectl_output(kubectl: list[str], *args: str, stdin: str | None = None) -> str:
    """`kubectl ARGS`'s output; RuntimeError with its message when it fails."""
    done = subprocess.run(
        [*kubectl, *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def wait_established(kubectl: list[str], crd: str, timeout: float = 60) -> None:
    """`kubectl wait` refuses a CRD whose status has no conditions yet ("accessor error"),
    which a freshly applied one briefly has: try again until it has them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            kubectl_output(
                kubectl, "wait", "--for=condition=Established", crd, f"--timeout={timeout:.0f}s"
            )
            return
        except RuntimeError as exc:
            if "accessor error" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def install_operator(kubectl: list[str], admin_kubeconfig: Path, out: Path) -> Path:
    """Install the CRD and the operator's RBAC; write a kubeconfig with its ServiceAccount's
    token to `out` and return it. Idempotent."""
    kubectl_output(kubectl, "apply", "-f", "-", stdin=render_crd())
    wait_established(kubectl, f"crd/{PLURAL}.{GROUP}")
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": _ACCOUNT, "namespace": OPERATOR_NAMESPACE},
        },
        operator_cluster_role(_ACCOUNT),
        operator_namespace_role(OPERATOR_NAMESPACE, _ACCOUNT),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": _ACCOUNT, "namespace": OPERATOR_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": _ACCOUNT},
            "subjects": [
                {"kind": "ServiceAccount", "name": _ACCOUNT, "namespace": OPERATOR_NAMESPACE}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": _ACCOUNT},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": _ACCOUNT,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": _ACCOUNT, "namespace": OPERATOR_NAMESPACE}
            ],
        },
    ]
    kubectl_output(kubectl, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
    token = kubectl_output(
        kubectl, "-n", OPERATOR_NAMESPACE, "create", "token", _ACCOUNT, "--duration=24h"
    ).strip()
    admin = yaml.safe_load(admin_kubeconfig.read_text())["clusters"][0]["cluster"]
    return write_kubeconfig(
        out,
        server=admin["server"],
        ca_pem=base64.b64decode(admin["certificate-authority-data"]),
        user=f"system:serviceaccount:{OPERATOR_NAMESPACE}:{_ACCOUNT}",
        token=token,
    )


def operator_command(config: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "tapedeck_operator.cli", "run"]
    return [*command, "--config", str(config)] if config else command


def kubelet_command(kubeconfig: Path, root: Path | None = None) -> list[str]:
    """`tapedeck-dev kubelet` for the control plane of `kubeconfig` (it needs root)."""
    command = [sys.executable, "-m", "tapedeck_dev.cli", "kubelet", "--kubeconfig", str(kubeconfig)]
    return [*command, "--root", str(root)] if root else command


def write_local_settings(
    path: Path, *, bot: Mapping[str, Any] | None = None, **settings: Any
) -> Path:
    """Operator settings for a local control plane, with `bot` and `settings` on top: the
    process kubelet runs a bot pod's command as is, so it is this Python; every server the
    operator and the bots open is on 127.0.0.1."""
    extra = dict(bot or {})
    env = {"TAPEDECK_ICE_HOST_ADDRESSES": "127.0.0.1", **extra.pop("env", {})}
    local = {
        "bot": {"command": [sys.executable, "-m", "tapedeck_bot.cli", "run"], "env": env, **extra},
        "listenAddress": "127.0.0.1",
        **settings,
    }
    path.write_text(yaml.safe_dump(local))
    return path


def create_restricted_namespace(kubectl: list[str], name: str) -> None:
    """A namespace whose pods the API server admits only under PodSecurity `restricted`."""
    kubectl_output(kubectl, "create", "namespace", name)
    kubectl_output(
        kubectl, "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted"
    )
