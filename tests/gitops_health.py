"""How GitOps tools judge live objects, from the real libraries: kstatus (sigs.k8s.io/cli-utils,
read by Flux and kpt) and our Argo CD health script run in gopher-lua, both by the
`dev/gitops-health` program on `kubectl get -o json`."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tapedeck_dev.binaries import ensure_gitops_health

ARGOCD_HEALTH_LUA = Path(__file__).resolve().parent.parent / "docs/gitops/recording-health.lua"


@dataclass(frozen=True)
class Verdict:
    status: str
    message: str


@dataclass(frozen=True)
class Health:
    kstatus: Verdict  # InProgress, Current, Failed, Terminating, ...
    argocd: Verdict  # Healthy, Progressing, Suspended, Degraded, ...


def health(kubectl: list[str], namespace: str, kind: str, name: str) -> Health:
    live = subprocess.run(
        [*kubectl, "-n", namespace, "get", kind, name, "-o", "json"],
        check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    out = subprocess.run(
        [str(ensure_gitops_health()), "-argocd-lua", str(ARGOCD_HEALTH_LUA)],
        input=live, check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    report = json.loads(out)
    return Health(Verdict(**report["kstatus"]), Verdict(**report["argocd"]))
