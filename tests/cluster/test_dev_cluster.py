"""`tapedeck-dev cluster up|env|down` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXTERNAL, REPO

pytestmark = pytest.mark.skipif(bool(EXTERNAL), reason="starts its own local control plane")


def _dev(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(str(REPO / d) for d in ("operator", "bot_image", "dev")),
    )
    return subprocess.run(
        [sys.executable, "-m", "tapedeck_dev.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_is_idempotent_and_down_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    first = _dev("cluster", "up", "--dir", str(state))
    try:
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"export KUBECONFIG={state / 'admin.kubeconfig'}"
        pids = json.loads((state / "pids.json").read_text())
        assert sorted(pids) == ["etcd", "kube-apiserver", "kube-controller-manager"]

        second = _dev("cluster", "up", "--dir", str(state))
        assert second.returncode == 0, second.stderr
        assert json.loads((state / "pids.json").read_text()) == pids  # nothing restarted

        env = _dev("cluster", "env", "--dir", str(state))
        assert f"export KUBECONFIG={state / 'admin.kubeconfig'}" in env.stdout
        kubectl = next(
            line.split("=", 1)[1].split(":")[0]
            for line in env.stdout.splitlines()
            if line.startswith("export PATH=")
        )
        version = subprocess.run(
            [
                f"{kubectl}/kubectl",
                f"--kubeconfig={state / 'admin.kubeconfig'}",
                "version",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert json.loads(version.stdout)["serverVersion"]["gitVersion"] == "v1.34.3"
        # A cluster without the CRD: kubectl tapedeck says so, and how to install it.
        plugin = subprocess.run(
            [str(Path(sys.executable).parent / "kubectl-tapedeck"),
             f"--kubeconfig={state / 'admin.kubeconfig'}", "status", "standup"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert plugin.returncode == 1
        assert plugin.stderr.strip().splitlines() == [
            "error: the Recording CRD (recordings.tapedeck.dev) is not installed in this cluster: "
            "kubectl apply -f crds/recording.yaml, or install the chart (helm install tapedeck "
            "charts/tapedeck)"
        ]
    finally:
        down = _dev("cluster", "down", "--dir", str(state))
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids.values())
    assert _dev("cluster", "env", "--dir", str(state)).returncode == 1
