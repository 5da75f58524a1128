"""Fixtures: a real control plane (once per run), the process kubelet, a namespace per test.

`TAPEDECK_TEST_KUBECONFIG` points the tests at an existing cluster (kind, k3d, a real one)
instead of starting the local control plane; tests that need the process kubelet are then
skipped, as a real cluster's kubelet cannot run their local commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tapedeck_bot.contract.crd import build_crd
from tapedeck_dev.binaries import ensure_binaries
from tapedeck_dev.cluster import LocalCluster
from tapedeck_dev.kubeclient import api_client, read_json
from tapedeck_dev.stack import kubelet_command
from tests.kube import read
from tests.waiting import eventually

pytest_plugins = ["tests.storage_fixtures"]

REPO = Path(__file__).resolve().parent.parent
EXTERNAL = os.environ.get("TAPEDECK_TEST_KUBECONFIG")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every suite must really run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") == "true" and skipped and exitstatus == 0:
        reporter.write_line(f"CI=true: {skipped} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The local control plane, for tests that stop and start its components."""
    if EXTERNAL:
        pytest.skip("needs the local control plane, not TAPEDECK_TEST_KUBECONFIG's cluster")
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    if EXTERNAL:
        return Path(EXTERNAL)
    cluster: LocalCluster = request.getfixturevalue("local_cluster")
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kube(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = api_client(kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> list[str]:
    """The kubectl command line, pointed at the test cluster."""
    return [str(ensure_binaries().kubectl), f"--kubeconfig={kubeconfig}"]


@pytest.fixture(scope="session")
def crd(kube: client.ApiClient) -> dict[str, object]:
    """The Recording CRD, installed and Established."""
    body = build_crd()
    name = body["metadata"]["name"]
    extensions = client.ApiextensionsV1Api(kube)
    read_json(
        extensions.patch_custom_resource_definition(
            name,
            body,
            field_manager="tapedeck-tests",
            force=True,
            _content_type="application/apply-patch+yaml",
            _preload_content=False,
        )
    )

    def established() -> bool:
        got = read(extensions.read_custom_resource_definition, name) or {}
        conditions = got.get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    eventually(established, what="the CRD to be Established")
    return body


@pytest.fixture(scope="session")
def kubelet(
    kubeconfig: Path, kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The process kubelet, running for the whole session; yields its pod directory root."""
    if EXTERNAL:
        pytest.skip("the process kubelet only runs against the local control plane")
    root = tmp_path_factory.mktemp("kubelet")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(str(REPO / d) for d in ("operator", "bot_image", "dev")),
        # As in the images, `tapedeck-operator` and `tapedeck-bot` are on the pods' PATH.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    with (root / "kubelet.log").open("wb") as log:
        proc = subprocess.Popen(
            kubelet_command(kubeconfig, root),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    core = client.CoreV1Api(kube)

    def registered() -> bool:
        assert proc.poll() is None, (root / "kubelet.log").read_text()
        return read(core.read_node, "tapedeck-dev") is not None

    eventually(registered, what="the process kubelet's Node")
    try:
        yield root
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace.model_validate({"metadata": {"name": name}}))
    # The serviceaccount controller creates it; pods are refused by admission until it exists.
    eventually(
        lambda: read(core.read_namespaced_service_account, "default", name),
        what=f"the default ServiceAccount in {name}: is the controller-manager up?",
    )
    try:
        yield name
    finally:
        core.delete_namespace(name)
