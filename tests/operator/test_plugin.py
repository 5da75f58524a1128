"""`kubectl tapedeck`, found by kubectl on PATH, against the control plane and the operator:
start (and --dry-run), status, pause, resume, stop, status --watch, download, logs, and its
one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.storage_servers import SeaweedFS
from tests.janus.conftest import Meeting
from tests.operator.conftest import Cluster, Operator, storage_spec

VENV_BIN = Path(sys.executable).parent


def _tapedeck(
    cluster: Cluster, kubeconfig: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`kubectl tapedeck ARGS`: kubectl itself finds kubectl-tapedeck on PATH."""
    env = dict(
        os.environ,
        KUBECONFIG=str(kubeconfig),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        COLUMNS="160",
    )
    kubectl = cluster.kubectl[0]
    return subprocess.run(
        [kubectl, "tapedeck", "-n", cluster.namespace, *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_the_plugin_starts_controls_watches_and_fetches_a_recording(
    cluster: Cluster,
    operator: Operator,
    janus: JanusServer,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    alice = meeting.join(0)
    start = ["--janus", janus.http_url, "--room", str(meeting.room), "--tracks", "--codec", "VP8"]

    # --dry-run prints a Recording the API server accepts; without it, the plugin creates it.
    printed = _tapedeck(cluster, kubeconfig, "start", "Plug In 1", *start, "--dry-run")
    assert printed.returncode == 0, printed.stderr
    manifest = yaml.safe_load(printed.stdout)
    assert manifest["metadata"]["name"] == "plug-in-1"
    cluster.run("apply", "--dry-run=server", "-f", "-", stdin=printed.stdout)
    created = _tapedeck(cluster, kubeconfig, "start", "Plug In 1", *start, "--name", "made")
    assert created.stdout.strip() == "recording.tapedeck.dev/made created", created.stderr
    assert cluster.get("recording", "made")["spec"]["meeting"] == manifest["spec"]["meeting"]
    again = _one_line_error(_tapedeck(cluster, kubeconfig, "start", "x", *start, "--name", "made"))
    assert again.startswith('error: recording "made" already exists')
    cluster.run("delete", "recording", "made", "--wait=false")

    missing = _one_line_error(_tapedeck(cluster, kubeconfig, "status", "nope"))
    assert f'recording "nope" not found in namespace "{cluster.namespace}"' in missing
    assert "kubectl get recordings" in missing

    # The plugin's Recording, with this test's bucket, recorded and driven by the plugin.
    manifest["metadata"]["name"] = "plug"
    manifest["spec"]["meeting"]["id"] = "plug-2"  # "made" may still hold the first one
    manifest["spec"]["storage"] = storage_spec(seaweed, bucket, cluster.namespace)
    cluster.apply(manifest)
    cluster.wait_phase("plug", "RECORDING", timeout=60)
    shown = _tapedeck(cluster, kubeconfig, "status", "plug")
    assert shown.returncode == 0, shown.stderr
    assert "RECORDING" in shown.stdout
    for command, phase in (("pause", "PAUSED"), ("resume", "RECORDING")):
        done = _tapedeck(cluster, kubeconfig, command, "plug")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().startswith("recording.tapedeck.dev/plug ")
        cluster.wait_phase("plug", phase, timeout=30)
    assert _tapedeck(cluster, kubeconfig, "stop", "plug").returncode == 0
    # --watch returns once the recording is UPLOADED and its URLs are there.
    watched = _tapedeck(cluster, kubeconfig, "status", "plug", "--watch", timeout=180)
    assert watched.returncode == 0, watched.stderr
    assert "UPLOADED" in watched.stdout
    assert alice.name in watched.stdout
    status = cluster.status("plug")
    assert status["phase"] == "UPLOADED"

    fetched = _tapedeck(cluster, kubeconfig, "download", "plug", "--dir", str(tmp_path / "out"))
    assert fetched.returncode == 0, fetched.stderr
    assert len(status["downloads"]) == 2  # the composite and alice's track
    for item in status["downloads"]:
        local = tmp_path / "out" / item["key"].rsplit("/", 1)[-1]
        assert local.read_bytes() == b"".join(bucket.read(item["key"], 1 << 20))

    logs = _tapedeck(cluster, kubeconfig, "logs", "plug")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.startswith("==> plug-bot-1 (")
    assert "recording started" in logs.stdout
