"""The process kubelet against the real control plane: env, exit codes, SIGTERM, RBAC,
volumes, in-cluster config, restarts in place and an API server outage."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tapedeck_bot.contract import GROUP, PLURAL, VERSION
from tapedeck_dev.cluster import LocalCluster
from tapedeck_dev.kubeclient import read_json
from tests.kube import Recordings, read
from tests.recordings import recording
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("kubelet")

MESSAGE_PATH = "/dev/termination-log"  # where a container's termination message goes


def _python_pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "python:3.11",
        "env": spec.pop("env", []),
        "command": [sys.executable, "-c", textwrap.dedent(script)],
        "volumeMounts": spec.pop("volumeMounts", []),
    }
    return {
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def _create_pod(kube: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    core = client.CoreV1Api(kube)
    pod = client.V1Pod.model_validate(body)
    return read_json(core.create_namespaced_pod(namespace, pod, _preload_content=False))


def _pod(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    pod = read(client.CoreV1Api(kube).read_namespaced_pod, name, namespace)
    assert pod is not None, f"pod {namespace}/{name} is gone"
    return pod


def _phase(kube: client.ApiClient, namespace: str, name: str) -> str | None:
    phase: str | None = _pod(kube, namespace, name).get("status", {}).get("phase")
    return phase


def _finished(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    pod = _pod(kube, namespace, name)
    return pod if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else None


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = pod["status"]["containerStatuses"][0]
    return status


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = _container(pod)["state"]["terminated"]
    return state


def _running_pid(kube: client.ApiClient, namespace: str, name: str) -> int | None:
    """The PID of the pod's running container (its containerID is process://<pid>)."""
    pod = _pod(kube, namespace, name)
    if pod.get("status", {}).get("phase") != "Running":
        return None
    status = _container(pod)
    if "running" not in status["state"]:
        return None
    return int(status["containerID"].removeprefix("process://"))


def _gone(kube: client.ApiClient, namespace: str, name: str) -> bool:
    return read(client.CoreV1Api(kube).read_namespaced_pod, name, namespace) is None


def test_env_from_secret_and_field_ref_and_exit_code(
    kube: client.ApiClient, namespace: str
) -> None:
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret.model_validate(
            {"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}}
        ),
    )
    script = f"""
        import os, sys
        with open({MESSAGE_PATH!r}, "w") as f:
            f.write(" ".join(f"{{k}}={{os.environ[k]}}" for k in ("TOKEN", "POD", "UID", "HELLO")))
        sys.exit(3)
    """
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "HELLO", "value": "hi-$(POD)"},
    ]
    created = _create_pod(kube, namespace, _python_pod("envy", script, env=env))

    pod = eventually(lambda: _finished(kube, namespace, "envy"), what="pod to finish")
    assert pod["status"]["phase"] == "Failed"
    terminated = _terminated(pod)
    assert terminated["exitCode"] == 3
    uid = created["metadata"]["uid"]
    assert terminated["message"] == f"TOKEN=s3cr3t POD=envy UID={uid} HELLO=hi-envy"


def test_the_api_server_serves_a_containers_log_from_the_kubelet(
    kube: client.ApiClient, namespace: str
) -> None:
    """`kubectl logs` goes from the API server to the kubelet's log endpoint."""
    script = """
        for i in range(5):
            print(f"line {i}", flush=True)
    """
    _create_pod(kube, namespace, _python_pod("talker", script))
    eventually(lambda: _finished(kube, namespace, "talker"), what="pod to finish")
    core = client.CoreV1Api(kube)
    whole = core.read_namespaced_pod_log("talker", namespace, container="main")
    assert whole.splitlines() == [f"line {i}" for i in range(5)]
    tail = core.read_namespaced_pod_log("talker", namespace, tail_lines=2)
    assert tail.splitlines() == ["line 3", "line 4"]


def test_missing_secret_keeps_pod_waiting_with_a_reason(
    kube: client.ApiClient, namespace: str
) -> None:
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    _create_pod(kube, namespace, _python_pod("orphan", "pass", env=env))

    def waiting() -> dict[str, Any] | None:
        statuses = _pod(kube, namespace, "orphan").get("status", {}).get("containerStatuses")
        return statuses[0]["state"].get("waiting") if statuses else None

    state = eventually(waiting, what="a waiting reason")
    assert state["reason"] == "CreateContainerConfigError"
    assert "absent" in state["message"]


def test_deletion_sends_sigterm_then_removes_the_pod(
    kube: client.ApiClient, namespace: str, tmp_path: Path
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
    _create_pod(kube, namespace, _python_pod("graceful", script))
    eventually(lambda: _running_pid(kube, namespace, "graceful"), what="pod Running")

    client.CoreV1Api(kube).delete_namespaced_pod("graceful", namespace, grace_period_seconds=30)
    eventually(lambda: _gone(kube, namespace, "graceful"), what="pod removed")
    assert marker.read_text() == "SIGTERM"


def test_grace_period_ends_in_sigkill(
    kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    script = f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        while True:
            time.sleep(0.05)
    """
    _create_pod(kube, namespace, _python_pod("stubborn", script))
    pid = eventually(lambda: _running_pid(kube, namespace, "stubborn"), what="pod Running")
    eventually(pidfile.exists, what="the container's pid file")
    assert int(pidfile.read_text()) == pid  # the containerID names the command's own process

    started = time.monotonic()
    client.CoreV1Api(kube).delete_namespaced_pod("stubborn", namespace, grace_period_seconds=2)
    eventually(lambda: _gone(kube, namespace, "stubborn"), what="pod removed")
    assert 2 <= time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _grant_reading_one_recording(kube: client.ApiClient, namespace: str) -> None:
    """ServiceAccount `bot` may get the Recording `mine`, and nothing else."""
    core = client.CoreV1Api(kube)
    rbac = client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount.model_validate({"metadata": {"name": "bot"}})
    )
    rule = {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": ["mine"]}
    rbac.create_namespaced_role(
        namespace,
        client.V1Role.model_validate(
            {"metadata": {"name": "read-mine"}, "rules": [{**rule, "verbs": ["get"]}]}
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding.model_validate(
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
    )


@pytest.mark.usefixtures("crd")
def test_in_cluster_config_sees_only_what_its_role_grants(
    kube: client.ApiClient, namespace: str
) -> None:
    recordings = Recordings(kube, namespace)
    for name in ("mine", "theirs"):
        recordings.create(recording(name))
    _grant_reading_one_recording(kube, namespace)
    # Exactly what the bot does in a real cluster: no kubeconfig, the pod's own token.
    script = f"""
        import os
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException
        config.load_incluster_config()
        api = client.CustomObjectsApi()
        namespace = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
        answers = [f"KUBECONFIG={{os.environ['KUBECONFIG']}}"]
        for name in ("mine", "theirs"):
            try:
                api.get_namespaced_custom_object(
                    {GROUP!r}, {VERSION!r}, namespace, {PLURAL!r}, name
                )
                answers.append(f"{{name}}=200")
            except ApiException as exc:
                answers.append(f"{{name}}={{exc.status}}")
        open({MESSAGE_PATH!r}, "w").write(" ".join(answers))
    """
    _create_pod(kube, namespace, _python_pod("reader", script, serviceAccountName="bot"))

    pod = eventually(lambda: _finished(kube, namespace, "reader"), what="pod to finish")
    assert _terminated(pod).get("message") == f"KUBECONFIG={os.devnull} mine=200 theirs=403", (
        _terminated(pod)
    )


def test_no_token_when_automount_is_off(kube: client.ApiClient, namespace: str) -> None:
    script = f"""
        import os
        found = os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token")
        open({MESSAGE_PATH!r}, "w").write(f"token={{found}}")
    """
    body = _python_pod("tokenless", script, automountServiceAccountToken=False)
    _create_pod(kube, namespace, body)

    pod = eventually(lambda: _finished(kube, namespace, "tokenless"), what="pod to finish")
    assert _terminated(pod)["message"] == "token=False"


def test_empty_dir_survives_a_restart_in_place_and_goes_with_the_pod(
    kube: client.ApiClient, namespace: str, kubelet: Path
) -> None:
    script = f"""
        import os, sys
        if os.path.exists("/spool/first"):
            open({MESSAGE_PATH!r}, "w").write("found " + open("/spool/first").read())
            sys.exit(0)
        open("/spool/first", "w").write(str(os.getpid()))
        sys.exit(1)
    """
    body = _python_pod(
        "spooler",
        script,
        restartPolicy="OnFailure",
        volumes=[{"name": "spool", "emptyDir": {}}],
        volumeMounts=[{"name": "spool", "mountPath": "/spool"}],
    )
    uid = _create_pod(kube, namespace, body)["metadata"]["uid"]

    pod = eventually(lambda: _finished(kube, namespace, "spooler"), what="pod to finish")
    assert pod["status"]["phase"] == "Succeeded"
    status = _container(pod)
    assert status["restartCount"] == 1
    first_run = status["lastState"]["terminated"]
    assert first_run["exitCode"] == 1
    assert _terminated(pod)["message"].startswith("found ")
    assert not Path("/spool/first").exists()  # in the pod's volume, not on the host

    pod_dir = kubelet / f"{namespace}_spooler_{uid}"
    assert (pod_dir / "volumes" / "spool" / "first").exists()
    client.CoreV1Api(kube).delete_namespaced_pod("spooler", namespace)
    eventually(lambda: _gone(kube, namespace, "spooler"), what="pod removed")
    eventually(lambda: not pod_dir.exists(), what="the pod's directory removed")


def test_sigkilled_container_restarts_at_once(kube: client.ApiClient, namespace: str) -> None:
    script = "import time\nwhile True: time.sleep(1)"
    _create_pod(kube, namespace, _python_pod("victim", script, restartPolicy="OnFailure"))
    pid = eventually(lambda: _running_pid(kube, namespace, "victim"), what="pod Running")

    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        new_pid = _running_pid(kube, namespace, "victim")
        return _pod(kube, namespace, "victim") if new_pid not in (None, pid) else None

    pod = eventually(restarted, what="the container running again")
    assert time.monotonic() - killed < 5  # the first restart does not back off
    assert pod["status"]["phase"] == "Running"
    status = _container(pod)
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 128 + signal.SIGKILL
    assert status["lastState"]["terminated"]["reason"] == "Error"


def test_pods_ride_out_an_api_server_restart(
    kube: client.ApiClient, namespace: str, local_cluster: LocalCluster
) -> None:
    script = "import time\nwhile True: time.sleep(1)"
    _create_pod(kube, namespace, _python_pod("steady", script, restartPolicy="OnFailure"))
    pid = eventually(lambda: _running_pid(kube, namespace, "steady"), what="pod Running")

    local_cluster.stop_component("kube-apiserver")
    try:
        time.sleep(3)
        os.kill(pid, 0)  # still running: the kubelet leaves its pods alone while it is away
    finally:
        local_cluster.start_component("kube-apiserver")

    _create_pod(kube, namespace, _python_pod("after", "pass"))
    eventually(lambda: _finished(kube, namespace, "after"), timeout=60, what="a new pod run")
    assert _running_pid(kube, namespace, "steady") == pid


def test_deployment_pod_is_created_by_controllers_and_run(
    kube: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube)
    core = client.CoreV1Api(kube)
    template = _python_pod("x", "import time\nwhile True: time.sleep(1)")
    template["metadata"] = {"labels": {"app": "web"}}
    template["spec"]["restartPolicy"] = "Always"
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment.model_validate(
            {
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": template,
                },
            }
        ),
    )

    def web_pods() -> list[dict[str, Any]]:
        pods = read_json(
            core.list_namespaced_pod(namespace, label_selector="app=web", _preload_content=False)
        )
        items: list[dict[str, Any]] = pods["items"]
        return items

    def running_pod() -> dict[str, Any] | None:
        return next((p for p in web_pods() if p.get("status", {}).get("phase") == "Running"), None)

    pod = eventually(running_pod, timeout=60, what="a Running pod of the Deployment")
    (owner,) = pod["metadata"]["ownerReferences"]
    assert owner["kind"] == "ReplicaSet"
    replicaset = read(apps.read_namespaced_replica_set, owner["name"], namespace)
    assert replicaset is not None
    assert replicaset["metadata"]["ownerReferences"][0]["name"] == "web"

    def available() -> bool:
        deployment = read(apps.read_namespaced_deployment, "web", namespace) or {}
        return bool(deployment.get("status", {}).get("availableReplicas") == 1)

    eventually(available, what="Deployment available")

    apps.delete_namespaced_deployment("web", namespace)
    eventually(
        lambda: not web_pods(), timeout=60, what="garbage collection of the Deployment's pods"
    )
