"""The operator as the Helm chart installs it: the chart's Deployment, ServiceAccount, RBAC
and settings ConfigMap applied to the API server, the pod run by the process kubelet with
exactly the command, env and files the chart renders, recording one meeting end to end."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.binaries import KUBERNETES_VERSION, ensure_helm
from tapedeck_dev.cluster import free_port
from tapedeck_dev.stack import create_restricted_namespace
from tapedeck_dev.storage_servers import SeaweedFS
from tests.conftest import REPO
from tests.janus.conftest import Meeting
from tests.operator.conftest import (
    Cluster,
    Operator,
    record_composite,
    stop_and_wait,
    storage_spec,
)
from tests.waiting import eventually

RELEASE_NAMESPACE = "tapedeck-chart"


def _render(values: list[str]) -> str:
    done = subprocess.run(
        [
            str(ensure_helm()), "template", "tapedeck", str(REPO / "charts" / "tapedeck"),
            "--namespace", RELEASE_NAMESPACE, "--kube-version", KUBERNETES_VERSION,
            "--set", "crds.install=false",  # the session's CRD, the same file
            *(arg for value in values for arg in ("--set-json", value)),
        ],
        capture_output=True, text=True, timeout=120, env={"HOME": "/tmp"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _operator_pod_logs(kubelet: Path) -> str:
    logs = sorted(kubelet.glob(f"{RELEASE_NAMESPACE}_tapedeck-*/*.log"))
    return "\n".join(log.read_text(errors="replace") for log in logs)


def test_the_operator_runs_as_the_chart_installs_it(
    cluster: Cluster,
    operator: Operator,
    kubectl: list[str],
    kubelet: Path,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    tmp_path: Path,
) -> None:
    meeting.join(0)
    manifest = tmp_path / "chart.yaml"
    # Local differences only: the bots' ICE stays on loopback, and the operator's ports are
    # free ones on 127.0.0.1 (the process kubelet shares the host's network).
    manifest.write_text(
        _render(
            [
                'bot.env={"TAPEDECK_ICE_HOST_ADDRESSES": "127.0.0.1"}',
                f"metrics.port={free_port()}",
                f"health.port={free_port()}",
                'listenAddress="127.0.0.1"',
            ]
        )
    )
    operator.stop()  # one operator at a time
    create_restricted_namespace(kubectl, RELEASE_NAMESPACE)
    apply = [*kubectl, "-n", RELEASE_NAMESPACE, "apply", "-f", str(manifest)]
    done = subprocess.run(apply, capture_output=True, text=True, timeout=120)
    try:
        assert done.returncode == 0, done.stderr
        assert "PodSecurity" not in done.stderr, done.stderr

        def running() -> bool:
            out = subprocess.run(
                [*kubectl, "-n", RELEASE_NAMESPACE, "get", "pods", "-o", "yaml"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            pods = yaml.safe_load(out)["items"]
            return any(p["status"].get("phase") == "Running" for p in pods)

        eventually(running, timeout=60, what="the chart's operator pod")
        record_composite(
            cluster,
            "charted",
            meeting,
            storage_spec(seaweed, bucket, cluster.namespace),
            seconds=4,
        )
        status = stop_and_wait(cluster, "charted")
        assert status["phase"] == "UPLOADED", status.get("error")
        uid = cluster.get("recording", "charted")["metadata"]["uid"]
        keys = [o.key for o in bucket.list_objects(f"{cluster.namespace}/{uid}/")]
        assert any("_composite_" in key for key in keys)
        assert status["downloadUrl"]
        logs = _operator_pod_logs(kubelet)
        assert '"reconciled"' in logs
        assert "Forbidden" not in logs  # the chart's RBAC is enough
    finally:
        delete = [*kubectl, "-n", RELEASE_NAMESPACE, "delete", "-f", str(manifest)]
        subprocess.run([*delete, "--timeout=60s"], capture_output=True, timeout=120)
        operator.start()
