"""The operator end to end: the real control plane, the process kubelet, Janus and SeaweedFS,
driven with kubectl as a user would."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.cluster import free_port
from tapedeck_dev.stack import (
    OPERATOR_NAMESPACE,
    create_restricted_namespace,
    install_operator,
    operator_command,
    write_local_settings,
)
from tapedeck_dev.storage_servers import SeaweedFS
from tapedeck_dev.webhook_receiver import Receiver, new_secret
from tapedeck_operator.kube import KubeClusterApi, api_client
from tests.conftest import REPO
from tests.image_host import ImageHost
from tests.janus import conftest as janus_fixtures
from tests.janus.conftest import Meeting
from tests.storage.media import playable_seconds
from tests.storage_fixtures import seaweed_store
from tests.waiting import eventually

STORAGE_SECRET = "s3"
WEBHOOK_SECRET = "webhook"
# The Janus suite's fixtures, shared: one Janus for the session, a room and a meeting per test.
janus, room, meeting = janus_fixtures.janus, janus_fixtures.room, janus_fixtures.meeting


@dataclass
class Operator:
    """`tapedeck-operator run` in its own process."""

    command: list[str]
    env: dict[str, str]
    log: Path
    metrics_url: str
    config: Path
    hooks: Receiver  # the cluster-wide webhook endpoint of its settings
    hooks_secret: str
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        eventually(self._serving, timeout=60, what="the operator's /metrics")

    def _serving(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, self.tail()
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text: str = response.read().decode()
            return text

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageHost]:
    """Where watermark URLs point: https on loopback, with a CA the operator trusts."""
    host = ImageHost(tmp_path_factory.mktemp("images"))
    host.start()
    yield host
    host.close()


@pytest.fixture(scope="session")
def operator(
    kubeconfig: Path,
    kubectl: list[str],
    crd: object,
    kubelet: Path,
    images: ImageHost,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    """The operator with its own least-privilege identity (a ServiceAccount token)."""
    directory = tmp_path_factory.mktemp("operator")
    identity = install_operator(kubectl, kubeconfig, directory / "operator.kubeconfig")
    metrics_port, health_port = free_port(), free_port()
    hooks, hooks_secret = Receiver(), new_secret()
    hooks.start()
    subprocess.run(
        [*kubectl, "-n", OPERATOR_NAMESPACE, "create", "secret", "generic", "cluster-webhook",
         f"--from-literal=key={hooks_secret}"],
        check=True, capture_output=True,
    )  # fmt: skip
    config = write_local_settings(
        directory / "operator.yaml",
        bot={
            "env": {"PYTHONUNBUFFERED": "1"},
            "gracePeriodSeconds": 120,
            "maxAttempts": 3,
            "startTimeoutSeconds": 15,
        },
        reconcileIntervalSeconds=1,
        metricsPort=metrics_port,
        healthPort=health_port,
        # The receivers are on loopback; retries and URL renewals come fast enough to watch.
        webhooks={
            "allowLoopbackDestinations": True,
            "initialBackoffSeconds": 0.5,
            "maxBackoffSeconds": 2,
            "timeoutSeconds": 5,
            "endpoints": [
                {
                    "url": hooks.url("/all"),
                    "secretRef": {
                        "namespace": OPERATOR_NAMESPACE,
                        "name": "cluster-webhook",
                        "key": "key",
                    },
                }
            ],
        },
        downloads={"expirySeconds": 12, "renewBeforeSeconds": 6},
        transfers={"maxAttempts": 3, "initialBackoffSeconds": 1, "maxBackoffSeconds": 2},
    )
    env = dict(
        os.environ,
        KUBECONFIG=str(identity),
        # OpenSSL's default trust store, which the egress uses: the image host's CA alone.
        SSL_CERT_FILE=str(images.ca_file),
        PYTHONPATH=os.pathsep.join(str(REPO / d) for d in ("operator", "bot_image", "dev")),
    )
    op = Operator(
        operator_command(config),
        env,
        directory / "operator.log",
        f"http://127.0.0.1:{metrics_port}",
        config,
        hooks,
        hooks_secret,
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()
        hooks.close()


@dataclass(frozen=True)
class Cluster:
    """kubectl against the test cluster, in one namespace labelled PodSecurity `restricted`."""

    kubectl: list[str]
    namespace: str

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [*self.kubectl, "-n", self.namespace, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done.stdout if check else done.stdout + done.stderr

    def apply(self, manifest: dict[str, Any]) -> None:
        self.run("apply", "-f", "-", stdin=yaml.safe_dump(manifest))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.run("get", kind, name, "-o", "json"))
        return obj

    def exists(self, kind: str, name: str) -> bool:
        out = self.run("get", kind, name, "--ignore-not-found", "-o", "name")
        return bool(out.strip())

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.get("recording", name).get("status") or {}
        return status

    def set_state(self, name: str, state: str) -> None:
        patch = json.dumps({"spec": {"state": state}})
        self.run("patch", "recording", name, "--type=merge", "-p", patch)

    def wait_phase(self, name: str, *phases: str, timeout: float = 90) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(name)
            return status if status.get("phase") in phases else None

        return eventually(reached, timeout=timeout, what=f"{name} to reach {phases}")

    def bot_pods(self, name: str) -> list[dict[str, Any]]:
        uid = self.get("recording", name)["metadata"]["uid"]
        out = self.run("get", "pods", "-l", f"tapedeck.dev/recording-uid={uid}", "-o", "json")
        pods: list[dict[str, Any]] = json.loads(out)["items"]
        return pods


@pytest.fixture
def cluster(kubectl: list[str], seaweed: SeaweedFS) -> Iterator[Cluster]:
    namespace = f"rec-{uuid.uuid4().hex[:8]}"
    create_restricted_namespace(kubectl, namespace)
    c = Cluster(kubectl, namespace)
    c.run(
        "create", "secret", "generic", STORAGE_SECRET,
        f"--from-literal=accessKeyId={seaweed.access_key}",
        f"--from-literal=secretAccessKey={seaweed.secret_key}",
    )  # fmt: skip
    yield c
    subprocess.run(
        [*kubectl, "delete", "namespace", namespace, "--wait=false"], capture_output=True
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    endpoint.start()
    yield endpoint
    endpoint.close()


@pytest.fixture
def webhook_secret(cluster: Cluster) -> str:
    """A Standard Webhooks secret, in the Secret that `webhook()` targets name."""
    secret = new_secret()
    cluster.run("create", "secret", "generic", WEBHOOK_SECRET, f"--from-literal=key={secret}")
    return secret


def webhook(url: str) -> dict[str, Any]:
    return {"url": url, "secretRef": {"name": WEBHOOK_SECRET, "key": "key"}}


def in_process_api(kubeconfig: Path) -> KubeClusterApi:
    """The operator's own client, with the admin's credentials, for running one of its passes
    in the test with a clock the test controls."""
    return KubeClusterApi(api_client(str(kubeconfig)))


@pytest.fixture
def bucket(seaweed: SeaweedFS) -> Iterator[ObjectStore]:
    store = seaweed_store(seaweed)
    yield store
    store.close()


def storage_spec(seaweed: SeaweedFS, store: ObjectStore, path: str) -> dict[str, Any]:
    return {
        "type": "s3",
        "region": "us-east-1",
        "endpoint": seaweed.endpoint,
        "bucket": store.bucket,
        "path": path,
        "secretRef": {"name": STORAGE_SECRET},
    }


def recording_manifest(
    name: str, meeting_id: str, url: str, room: int, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "tapedeck.dev/v1alpha1",
        "kind": "Recording",
        "metadata": {"name": name},
        "spec": {"meeting": {"id": meeting_id, "janus": {"url": url, "room": room}}, **spec},
    }


COMPOSITE = {"video": {"codec": "VP8", "width": 640, "height": 360}}


def utc(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def record_composite(
    cluster: Cluster,
    name: str,
    meeting: Meeting,
    storage: dict[str, Any],
    *,
    seconds: float,
    **extra: Any,
) -> float:
    """Apply a VP8 composite Recording of `meeting` (its id is `name`) into `storage`; return
    its start (UTC epoch) once it has been recording for `seconds`."""
    spec = {"composite": COMPOSITE, "storage": storage, **extra}
    cluster.apply(recording_manifest(name, name, meeting.url, meeting.room, **spec))
    started = utc(cluster.wait_phase(name, "RECORDING", timeout=60)["startedAt"])
    time.sleep(max(0.0, started + seconds - time.time()))
    return started


def stop_and_wait(cluster: Cluster, name: str) -> dict[str, Any]:
    """Stop, and wait for the outcome and for the operator to have turned it into Ready."""
    cluster.set_state(name, "Stopped")
    cluster.wait_phase(name, "UPLOADED", "ERRORED", timeout=120)

    def concluded() -> dict[str, Any] | None:
        status = cluster.status(name)
        ready = {c["type"]: c for c in status.get("conditions") or []}.get("Ready", {})
        return status if ready.get("reason") in ("Uploaded", "Errored") else None

    return eventually(concluded, timeout=30, what=f"{name}'s Ready condition")


def segment_seconds(store: ObjectStore, key: str, path: Path) -> float:
    path.write_bytes(b"".join(store.read(key, 1 << 20)))
    video, audio = playable_seconds(path)
    assert audio > 1
    return video
