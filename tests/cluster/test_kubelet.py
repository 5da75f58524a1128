"""The process kubelet against the real control plane: env, exit codes, SIGTERM, RBAC."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Pod, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from tapedeck_bot.contract import GROUP, KIND, PLURAL, VERSION
from tests.recordings import recording
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("kubelet")

Recording = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)


def _python_pod(name: str, script: str, **spec: Any) -> Pod:
    container = {
        "name": "main",
        "image": "python:3.11",
        "env": spec.pop("env", []),
        "command": [sys.executable, "-c", textwrap.dedent(script)],
    }
    return Pod.from_dict(
        {
            "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [container], **spec},
        }
    )


def _finished(kube: Client, namespace: str, name: str) -> dict[str, Any] | None:
    pod = kube.get(Pod, name, namespace=namespace).to_dict()
    return pod if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else None


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


def test_env_from_secret_and_field_ref_and_exit_code(kube: Client, namespace: str) -> None:
    kube.create(
        Secret.from_dict({"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}}),
        namespace=namespace,
    )
    script = """
        import os, sys
        with open(os.environ["TAPEDECK_TERMINATION_MESSAGE_PATH"], "w") as f:
            f.write(" ".join(f"{k}={os.environ[k]}" for k in ("TOKEN", "POD", "UID", "HELLO")))
        sys.exit(3)
    """
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "HELLO", "value": "hi-$(POD)"},
    ]
    created = kube.create(_python_pod("envy", script, env=env), namespace=namespace)

    pod = eventually(lambda: _finished(kube, namespace, "envy"), what="pod to finish")
    assert pod["status"]["phase"] == "Failed"
    terminated = _terminated(pod)
    assert terminated["exitCode"] == 3
    assert (
        terminated["message"] == f"TOKEN=s3cr3t POD=envy UID={created.metadata.uid} HELLO=hi-envy"
    )


def test_missing_secret_keeps_pod_waiting_with_a_reason(kube: Client, namespace: str) -> None:
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    kube.create(_python_pod("orphan", "pass", env=env), namespace=namespace)

    def waiting() -> dict[str, Any] | None:
        statuses = (
            kube.get(Pod, "orphan", namespace=namespace)
            .to_dict()["status"]
            .get("containerStatuses")
            or []
        )
        return statuses[0]["state"].get("waiting") if statuses else None

    state = eventually(waiting, what="a waiting reason")
    assert state["reason"] == "CreateContainerConfigError"
    assert "absent" in state["message"]


def _running(kube: Client, namespace: str, name: str) -> bool:
    return (
        kube.get(Pod, name, namespace=namespace).to_dict().get("status", {}).get("phase")
        == "Running"
    )


def _gone(kube: Client, namespace: str, name: str) -> bool:
    try:
        kube.get(Pod, name, namespace=namespace)
    except ApiError as exc:
        return exc.status.code == 404
    return False


def test_deletion_sends_sigterm_then_removes_the_pod(
    kube: Client, namespace: str, tmp_path: Path
) -> None:
    marker = tmp_path / "signal"
    script = f"""
        import signal, sys, time
        def stop(signum, frame):
            open({str(marker)!r}, "w").write(signal.Signals(signum).name)
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        while True:
            time.sleep(0.05)
    """
    kube.create(_python_pod("graceful", script), namespace=namespace)
    eventually(lambda: _running(kube, namespace, "graceful"), what="pod Running")

    kube.delete(Pod, "graceful", namespace=namespace, grace_period=30)
    eventually(lambda: _gone(kube, namespace, "graceful"), what="pod removed")
    assert marker.read_text() == "SIGTERM"


def test_grace_period_ends_in_sigkill(kube: Client, namespace: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        while True:
            time.sleep(0.05)
    """
    kube.create(_python_pod("stubborn", script), namespace=namespace)
    eventually(lambda: _running(kube, namespace, "stubborn") and pidfile.exists(), what="Running")
    pid = int(pidfile.read_text())

    started = time.monotonic()
    kube.delete(Pod, "stubborn", namespace=namespace, grace_period=2)
    eventually(lambda: _gone(kube, namespace, "stubborn"), what="pod removed")
    assert 2 <= time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.usefixtures("crd")
def test_service_account_sees_only_what_its_role_grants(kube: Client, namespace: str) -> None:
    for name in ("mine", "theirs"):
        kube.create(Recording.from_dict(recording(name)), namespace=namespace)
    kube.create(ServiceAccount.from_dict({"metadata": {"name": "bot"}}), namespace=namespace)
    kube.create(
        Role.from_dict(
            {
                "metadata": {"name": "read-mine"},
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "resources": [PLURAL],
                        "resourceNames": ["mine"],
                        "verbs": ["get"],
                    }
                ],
            }
        ),
        namespace=namespace,
    )
    kube.create(
        RoleBinding.from_dict(
            {
                "metadata": {"name": "bot-reads-mine"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "read-mine",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": namespace}],
            }
        ),
        namespace=namespace,
    )
    script = f"""
        import os
        from lightkube import ApiError, Client
        from lightkube.generic_resource import create_namespaced_resource
        Recording = create_namespaced_resource({GROUP!r}, {VERSION!r}, {KIND!r}, {PLURAL!r})
        client = Client()
        answers = []
        for name in ("mine", "theirs"):
            try:
                client.get(Recording, name)
                answers.append(f"{{name}}=200")
            except ApiError as exc:
                answers.append(f"{{name}}={{exc.status.code}}")
        open(os.environ["TAPEDECK_TERMINATION_MESSAGE_PATH"], "w").write(" ".join(answers))
    """
    kube.create(_python_pod("reader", script, serviceAccountName="bot"), namespace=namespace)

    pod = eventually(lambda: _finished(kube, namespace, "reader"), what="pod to finish")
    assert _terminated(pod)["message"] == "mine=200 theirs=403"


def test_deployment_pod_is_created_by_controllers_and_run(kube: Client, namespace: str) -> None:
    template = _python_pod("x", "import time\nwhile True: time.sleep(1)").to_dict()
    template["metadata"] = {"labels": {"app": "web"}}
    template["spec"]["restartPolicy"] = "Always"
    kube.create(
        Deployment.from_dict(
            {
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": template,
                },
            }
        ),
        namespace=namespace,
    )

    def running_pod() -> dict[str, Any] | None:
        pods = [p.to_dict() for p in kube.list(Pod, namespace=namespace, labels={"app": "web"})]
        return next((p for p in pods if p.get("status", {}).get("phase") == "Running"), None)

    pod = eventually(running_pod, timeout=60, what="a Running pod of the Deployment")
    (owner,) = pod["metadata"]["ownerReferences"]
    assert owner["kind"] == "ReplicaSet"
    replicaset = kube.get(ReplicaSet, owner["name"], namespace=namespace)
    assert replicaset.metadata.ownerReferences[0].name == "web"
    eventually(
        lambda: kube.get(Deployment, "web", namespace=namespace).status.availableReplicas == 1,
        what="Deployment available",
    )

    kube.delete(Deployment, "web", namespace=namespace)
    eventually(
        lambda: not list(kube.list(Pod, namespace=namespace, labels={"app": "web"})),
        timeout=60,
        what="garbage collection of the Deployment's pods",
    )
