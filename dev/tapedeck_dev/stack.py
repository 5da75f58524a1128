"""The whole system on one machine: control plane, process kubelet and operator (dev only).

The operator runs as it would in a cluster: as a ServiceAccount bound to its own
least-privilege ClusterRole (`tapedeck_operator.rbac`), never as the admin.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import yaml

from tapedeck_bot.contract import GROUP, PLURAL
from tapedeck_bot.contract.crd import render_crd
from tapedeck_dev.cluster import write_kubeconfig
from tapedeck_operator.rbac import operator_cluster_role

__all__ = ["OPERATOR_NAMESPACE", "install_operator", "operator_command"]

OPERATOR_NAMESPACE = "tapedeck-system"
_ACCOUNT = "tapedeck-operator"


def _kubectl(kubectl: list[str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*kubectl, *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def install_operator(kubectl: list[str], admin_kubeconfig: Path, out: Path) -> Path:
    """Install the CRD and the operator's RBAC; write a kubeconfig with its ServiceAccount's
    token to `out` and return it. Idempotent."""
    _kubectl(kubectl, "apply", "-f", "-", stdin=render_crd())
    _kubectl(kubectl, "wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}")
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": _ACCOUNT, "namespace": OPERATOR_NAMESPACE},
        },
        operator_cluster_role(_ACCOUNT),
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
    _kubectl(kubectl, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
    token = _kubectl(
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
