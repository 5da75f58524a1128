"""The Helm chart: helm lint, helm template in each mode and with each example values file,
its values schema, and the rendered manifests against the real API server (server-side dry
run, PodSecurity `restricted`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tapedeck_dev.binaries import KUBERNETES_VERSION, ensure_helm
from tapedeck_dev.stack import create_restricted_namespace
from tapedeck_operator.api.settings import ApiSettings
from tapedeck_operator.config import load_settings
from tapedeck_operator.rbac import api_rules, operator_namespace_role, operator_rules
from tapedeck_operator.values_schema import values_schema
from tests.conftest import REPO

CHART = REPO / "charts" / "tapedeck"
EXAMPLES = sorted((REPO / "examples").glob("values-*.yaml"))


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_helm()


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, env={"HOME": "/tmp"}
    )


# For the Kubernetes the tests run (helm built from source defaults to v1.20).
KUBE_VERSION = ("--kube-version", KUBERNETES_VERSION)


def render(helm: Path, *args: str, namespace: str = "tapedeck-system") -> list[dict[str, Any]]:
    done = _helm(
        helm, "template", "tapedeck", str(CHART), "--namespace", namespace, *KUBE_VERSION, *args
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _settings(docs: list[dict[str, Any]], tmp_path: Path) -> Any:
    [config] = [c for c in _of(docs, "ConfigMap") if "settings.yaml" in c["data"]]
    path = tmp_path / "settings.yaml"
    path.write_text(config["data"]["settings.yaml"])
    return load_settings(path)


def test_the_committed_values_schema_is_generated_from_the_settings_models() -> None:
    committed = json.loads((CHART / "values.schema.json").read_text())
    assert committed == values_schema(), "run `make crds` to regenerate values.schema.json"


@pytest.mark.parametrize("values", [None, *EXAMPLES], ids=lambda v: v.name if v else "defaults")
def test_lint_passes(helm: Path, values: Path | None) -> None:
    args = ["--values", str(values)] if values else []
    done = _helm(helm, "lint", "--strict", *KUBE_VERSION, str(CHART), *args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_defaults_render_a_cluster_wide_operator_with_its_own_rules(
    helm: Path, tmp_path: Path
) -> None:
    docs = render(helm)
    [role] = _of(docs, "ClusterRole")
    assert role["rules"] == operator_rules()
    [deployment] = _of(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["run", "--config=/etc/tapedeck/settings.yaml"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The settings file is the operator's own: it loads, with the chart's values in it.
    settings = _settings(docs, tmp_path)
    assert (settings.namespace, settings.retention.days, settings.storage) == (
        "tapedeck-system",
        7,
        None,
    )
    [tombstones] = [r for r in _of(docs, "Role") if r["metadata"]["name"].endswith("tombstones")]
    assert tombstones["rules"] == operator_namespace_role("tapedeck-system")["rules"]
    [crd] = _of(docs, "CustomResourceDefinition")
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert _of(docs, "ServiceMonitor") == []


def test_watched_namespaces_get_roles_and_nothing_cluster_wide(helm: Path, tmp_path: Path) -> None:
    values = REPO / "examples" / "values-namespaced.yaml"
    docs = render(helm, "--values", str(values))
    assert _of(docs, "ClusterRole") == _of(docs, "ClusterRoleBinding") == []
    roles = {r["metadata"]["namespace"]: r for r in _of(docs, "Role")}
    assert roles["team-a"]["rules"] == roles["team-b"]["rules"] == operator_rules()
    [deployment] = _of(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][-2:] == ["--namespace=team-a", "--namespace=team-b"]
    assert _settings(docs, tmp_path).storage is not None


def test_each_example_renders_settings_the_operator_loads(helm: Path, tmp_path: Path) -> None:
    for values in EXAMPLES:
        settings = _settings(render(helm, "--values", str(values)), tmp_path)
        expected = yaml.safe_load(values.read_text())
        if "retention" in expected:
            assert settings.retention.days == expected["retention"]["days"]
        if "storage" in expected:
            assert settings.storage is not None
            assert settings.storage.bucket == expected["storage"]["bucket"]


def test_the_demo_points_the_default_storage_at_its_own_s3_server(
    helm: Path, tmp_path: Path
) -> None:
    docs = render(helm, "--set", "demo.enabled=true", namespace="demo")
    storage = _settings(docs, tmp_path).storage
    assert storage is not None
    assert storage.endpoint == "http://tapedeck-demo-s3.demo.svc:8333"
    assert storage.secret_ref.name == "tapedeck-demo-s3"
    services = {d["metadata"]["name"]: d["spec"]["ports"][0]["port"] for d in _of(docs, "Service")}
    assert services["tapedeck-demo-s3"] == 8333
    assert services["tapedeck-demo-janus"] == 8088
    [secret] = _of(docs, "Secret")
    assert set(secret["stringData"]) >= {"accessKeyId", "secretAccessKey"}
    # An explicit default storage wins over the demo's, and the demo is off by default.
    values = REPO / "examples" / "values-r2.yaml"
    docs = render(helm, "--set", "demo.enabled=true", "--values", str(values))
    assert _settings(docs, tmp_path).storage.type == "r2"  # type: ignore[union-attr]
    assert not [d for d in render(helm) if "demo" in d["metadata"]["name"]]


def test_crds_can_be_left_out_and_let_go(helm: Path) -> None:
    assert _of(render(helm, "--set", "crds.install=false"), "CustomResourceDefinition") == []
    [crd] = _of(render(helm, "--set", "crds.keep=false"), "CustomResourceDefinition")
    assert "annotations" not in crd["metadata"]


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("retention.dayz=3", "'dayz' not allowed"),
        ("metrics.port=abc", "at '/metrics/port': got string, want integer"),
        ("operator.logLevel=loud", "at '/operator/logLevel'"),
        ("downloads.expirySeconds=700000", "at '/downloads/expirySeconds'"),
    ],
)
def test_the_values_schema_refuses_typos_and_wrong_types(
    helm: Path, setting: str, says: str
) -> None:
    done = _helm(helm, "template", "tapedeck", str(CHART), *KUBE_VERSION, "--set", setting)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr, done.stderr
    assert says in done.stderr, done.stderr


def test_the_rendered_manifests_pass_the_api_server_and_podsecurity_restricted(
    helm: Path, kubectl: list[str], crd: object, tmp_path: Path
) -> None:
    """Server-side dry run into a namespace that enforces PodSecurity `restricted`: the API
    server validates every object, and warns of any pod template that would be refused."""
    namespace = "chart-dry-run"
    create_restricted_namespace(kubectl, namespace)
    manifest = tmp_path / "chart.yaml"
    # With the demo and the API on, their pods are checked too.
    docs = render(
        helm,
        "--set", "crds.install=false",
        "--set", "demo.enabled=true",
        "--set", "api.enabled=true",
        namespace=namespace,
    )  # fmt: skip
    assert {d["metadata"]["name"] for d in _of(docs, "Deployment")} == {
        "tapedeck",
        "tapedeck-api",
        "tapedeck-demo-janus",
        "tapedeck-demo-s3",
        "tapedeck-demo-meeting",
    }
    manifest.write_text(yaml.safe_dump_all(docs))
    done = subprocess.run(
        [*kubectl, "apply", "--dry-run=server", "-n", namespace, "-f", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "PodSecurity" not in done.stderr, done.stderr
    assert "deployment.apps/tapedeck created (server dry run)" in done.stdout


def test_the_api_is_two_stateless_replicas_with_only_its_own_rules(helm: Path) -> None:
    assert [d for d in render(helm) if "api" in d["metadata"]["name"]] == []  # off by default
    app = {"namespace": "team-a", "janusUrl": "http://janus:8088/janus", "rooms": {"m-1": 7}}
    docs = render(
        helm, "--set", "api.enabled=true", "--set-json", f"api.apps={json.dumps({'app-1': app})}"
    )
    [deployment] = [d for d in _of(docs, "Deployment") if d["metadata"]["name"] == "tapedeck-api"]
    assert deployment["spec"]["replicas"] == 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["tapedeck-api"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    [role] = [r for r in _of(docs, "ClusterRole") if r["metadata"]["name"] == "tapedeck-api"]
    assert role["rules"] == api_rules()
    [service] = [s for s in _of(docs, "Service") if s["metadata"]["name"] == "tapedeck-api"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    [budget] = _of(docs, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    [settings] = [c for c in _of(docs, "ConfigMap") if c["metadata"]["name"] == "tapedeck-api"]
    loaded = ApiSettings.model_validate(yaml.safe_load(settings["data"]["settings.yaml"]))
    assert loaded.namespace("app-1") == "team-a"
    assert loaded.app("app-1").rooms == {"m-1": 7}
