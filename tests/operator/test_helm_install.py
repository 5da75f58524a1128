"""The operator as the Helm chart installs it: the chart's Deployment, ServiceAccount, RBAC
and settings ConfigMap applied to the API server, the pod run by the process kubelet with
exactly the command, env and files the chart renders, recording one meeting end to end: with
cluster-wide RBAC, and watching one namespace (another namespace's Recording left alone)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml
from kubernetes import client

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.binaries import KUBERNETES_VERSION, ensure_helm
from tapedeck_dev.cluster import free_port
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.stack import create_restricted_namespace
from tapedeck_dev.storage_servers import SeaweedFS
from tests.api.conftest import APP, api_token, bearer, ok, url
from tests.conftest import REPO
from tests.gitops_health import health
from tests.janus.conftest import Meeting
from tests.operator.conftest import (
    Cluster,
    Operator,
    record_composite,
    recording_manifest,
    stop_and_wait,
    storage_spec,
)
from tests.waiting import eventually

RELEASE_NAMESPACE = "tapedeck-chart"


# Local differences only: the bots' ICE stays on loopback, and the operator's ports are free
# ones on 127.0.0.1 (the process kubelet shares the host's network).
LOCAL = [
    'bot.env={"TAPEDECK_ICE_HOST_ADDRESSES": "127.0.0.1"}',
    f"metrics.port={free_port()}",
    f"health.port={free_port()}",
    'listenAddress="127.0.0.1"',
]


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


@contextlib.contextmanager
def _installed(kubectl: list[str], operator: Operator, manifest: Path) -> Iterator[None]:
    """The rendered chart applied and its operator pod Running, instead of the session's
    operator (one operator at a time); deleted again afterwards."""
    operator.stop()
    create_restricted_namespace(kubectl, RELEASE_NAMESPACE)
    # Every rendered object names its namespace (the watched ones get Roles there).
    apply = [*kubectl, "apply", "-f", str(manifest)]
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
            return bool(pods) and all(p["status"].get("phase") == "Running" for p in pods)

        eventually(running, timeout=60, what="the chart's pods")
        yield
    finally:
        for command in (
            ["delete", "-f", str(manifest)],
            ["delete", "namespace", RELEASE_NAMESPACE],
        ):
            subprocess.run(
                [*kubectl, "-n", RELEASE_NAMESPACE, *command, "--timeout=60s"],
                capture_output=True, timeout=120,
            )  # fmt: skip
        operator.start()


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _records_one_meeting(
    cluster: Cluster, meeting: Meeting, seaweed: SeaweedFS, bucket: ObjectStore, name: str
) -> None:
    record_composite(
        cluster, name, meeting, storage_spec(seaweed, bucket, cluster.namespace), seconds=4
    )
    status = stop_and_wait(cluster, name)
    assert status["phase"] == "UPLOADED", status.get("error")
    uid = cluster.get("recording", name)["metadata"]["uid"]
    keys = [o.key for o in bucket.list_objects(f"{cluster.namespace}/{uid}/")]
    assert any("_composite_" in key for key in keys)
    assert status["downloadUrl"]


def test_the_operator_and_the_api_run_as_the_chart_installs_them(
    cluster: Cluster,
    operator: Operator,
    kubectl: list[str],
    kubelet: Path,
    kube: client.ApiClient,
    janus: JanusServer,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    tmp_path: Path,
) -> None:
    meeting.join(0)
    port = free_port()
    app = {
        "namespace": cluster.namespace,
        "janusUrl": janus.http_url,
        "storage": storage_spec(seaweed, bucket, cluster.namespace),
    }
    # One replica: the process kubelet's pods share the host's ports.
    api = [
        "api.enabled=true",
        "api.replicas=1",
        f"api.port={port}",
        f"api.apps={json.dumps({APP: app})}",
    ]
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(_render([*LOCAL, *api]))
    with _installed(kubectl, operator, manifest):
        _records_one_meeting(cluster, meeting, seaweed, bucket, "charted")
        logs = _operator_pod_logs(kubelet)
        assert '"reconciled"' in logs
        # The chart's RBAC is enough: nothing refused, but writes into namespaces that earlier
        # tests are deleting (refused as "being terminated", whatever the rights).
        refused = [line for line in logs.splitlines() if "Forbidden" in line]
        assert [line for line in refused if "being terminated" not in line] == []

        # The API's pod, with the chart's ServiceAccount and rules, starts and stops one too.
        key = api_token(kube, cluster.namespace, ["create", "get", "patch"])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            eventually(lambda: _answers(http), what="tapedeck-api's /healthz")
            started = http.post(url(), json={"meeting_id": str(meeting.room)}, headers=bearer(key))
            recording_id = ok(started, "GetRecordingResponse", 201)["data"]["id"]

            def status() -> str:
                got = http.get(url(f"/{recording_id}"), headers=bearer(key))
                found: str = ok(got, "GetRecordingResponse")["data"]["status"]
                return found

            eventually(lambda: status() == "RECORDING", timeout=60, what="RECORDING via the API")
            stopping = http.put(
                url(f"/{recording_id}"), json={"action": "stop"}, headers=bearer(key)
            )
            ok(stopping, "GetRecordingResponse")
            eventually(lambda: status() == "UPLOADED", timeout=120, what="UPLOADED via the API")


def test_in_namespaced_mode_an_unwatched_namespace_is_left_alone(
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
    unwatched = Cluster(kubectl, "tapedeck-unwatched")
    create_restricted_namespace(kubectl, unwatched.namespace)
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(_render([*LOCAL, f'operator.watchNamespaces=["{cluster.namespace}"]']))
    rendered = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc]
    assert not [doc for doc in rendered if doc["kind"].startswith("Cluster")]
    try:
        with _installed(kubectl, operator, manifest):
            unwatched.apply(recording_manifest("ignored", "ignored", meeting.url, meeting.room))
            _records_one_meeting(cluster, meeting, seaweed, bucket, "namespaced")
            # By now the operator has long had its chance at the unwatched Recording: the
            # watched one went from apply to UPLOADED after it was applied.
            # Only the CRD's defaults: no phase, no condition, never observed.
            untouched = unwatched.get("recording", "ignored")["status"]
            assert untouched["observedGeneration"] == 0
            assert "phase" not in untouched
            assert untouched["conditions"] == []
            assert not unwatched.bot_pods("ignored")
            # GitOps health of a Recording no operator has seen: not done yet, as it should be.
            verdict = health(kubectl, unwatched.namespace, "recording", "ignored")
            assert verdict.kstatus.status == "InProgress"
            assert verdict.argocd.status == "Progressing"
            logs = _operator_pod_logs(kubelet)
            assert '"reconciled"' in logs
            assert "Forbidden" not in logs
            assert "(403)" not in logs  # the client's ApiException; kopf logs "Forbidden"
            assert unwatched.namespace not in logs
    finally:
        subprocess.run(
            [*kubectl, "delete", "namespace", unwatched.namespace, "--wait=false"],
            capture_output=True, timeout=60,
        )  # fmt: skip
