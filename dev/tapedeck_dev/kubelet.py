"""The process kubelet: runs pods' containers as local processes. A dev/test tool only.

It registers one Node, binds pending unscheduled pods to it, and runs each container's
`command` + `args` with its env resolved. Each pod gets its ServiceAccount's identity as a
kubeconfig holding a TokenRequest token, so RBAC applies to the process as it would in a
cluster. Deleting a pod sends SIGTERM, waits the grace period, then SIGKILL.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import msgspec
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.authentication_v1 import BoundObjectReference, TokenRequestSpec
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Node, Pod, Secret, ServiceAccount
from lightkube.types import PatchType

from tapedeck_dev.cluster import write_kubeconfig
from tapedeck_dev.podenv import EnvError, expand, resolve_env

__all__ = ["ProcessKubelet"]

log = logging.getLogger("tapedeck_dev.kubelet")

# What a process inherits from the kubelet: enough to find python and the venv, never the
# kubelet's own credentials (KUBECONFIG is replaced by the pod's ServiceAccount identity).
_INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "TAPEDECK_CACHE",
)
TERMINATION_MESSAGE_ENV = "TAPEDECK_TERMINATION_MESSAGE_PATH"
_TOKEN_SECONDS = 86400  # one recording lasts at most spec.maxSeconds = 86400
_MESSAGE_LIMIT = 4096


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    name: str
    proc: subprocess.Popen[bytes]
    started_at: str
    message_path: Path
    log_path: Path
    fallback_to_logs: bool
    restarts: int = 0
    finished_at: str | None = None

    def state(self) -> dict[str, Any]:
        code = self.proc.poll()
        if code is None:
            return {"running": {"startedAt": self.started_at}}
        terminated: dict[str, Any] = {
            "exitCode": code if code >= 0 else 128 - code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": self.finished_at or _now(),
        }
        if message := self._termination_message(code):
            terminated["message"] = message
        if code < 0:
            terminated["signal"] = -code
        return {"terminated": terminated}

    def _termination_message(self, code: int) -> str:
        if self.message_path.exists():
            text = self.message_path.read_text(errors="replace")[:_MESSAGE_LIMIT]
            if text:
                return text
        if code != 0 and self.fallback_to_logs and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-_MESSAGE_LIMIT:]
        return ""


@dataclass
class RunningPod:
    uid: str
    namespace: str
    name: str
    directory: Path
    containers: dict[str, Container] = field(default_factory=dict)
    stopping_since: float | None = None
    reported: dict[str, Any] | None = None


class ProcessKubelet:
    """One node whose pods are local processes."""

    def __init__(
        self,
        client: Client,
        root: Path,
        *,
        node_name: str = "tapedeck-dev",
        cpu: str = "2",
        memory: str = "8Gi",
        server: str,
        ca_pem: bytes,
    ) -> None:
        self.client = client
        self.root = root
        self.node_name = node_name
        self._capacity = {"cpu": cpu, "memory": memory, "pods": "110"}
        self._server = server
        self._ca_pem = ca_pem
        self._pods: dict[str, RunningPod] = {}

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path, root: Path, **kwargs: Any) -> ProcessKubelet:
        config = KubeConfig.from_file(kubeconfig)
        single = config.get()
        if single is None:
            raise ValueError(f"{kubeconfig} has no current context")
        cluster = single.cluster
        if cluster.certificate_auth_data:
            ca_pem = base64.b64decode(cluster.certificate_auth_data)
        else:
            ca_pem = Path(cluster.certificate_auth or os.devnull).read_bytes()
        return cls(Client(config), root, server=cluster.server, ca_pem=ca_pem, **kwargs)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: Any, poll_s: float = 0.3) -> None:
        """Sync until `stop.is_set()`; then stop every pod's processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.register_node()
        last_heartbeat = time.monotonic()
        while not stop.is_set():
            try:
                self.sync_once()
                if time.monotonic() - last_heartbeat > 10:
                    self.register_node()
                    last_heartbeat = time.monotonic()
            except (ApiError, httpx2.HTTPError) as exc:
                log.warning("sync failed: %s", exc)
            except Exception:  # a dev daemon: one bad pod must not stop every other pod
                log.exception("sync failed")
            stop.wait(poll_s)
        for pod in list(self._pods.values()):
            self._kill_all(pod, signal.SIGTERM)

    def register_node(self) -> None:
        labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "tapedeck.dev/process-kubelet": "true",
        }
        try:
            self.client.create(Node(metadata=ObjectMeta(name=self.node_name, labels=labels)))
        except ApiError as exc:
            if exc.status.code != 409:
                raise
        status = {
            "status": {
                "capacity": self._capacity,
                "allocatable": self._capacity,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "process kubelet is posting ready status",
                        "lastHeartbeatTime": _now(),
                        "lastTransitionTime": _now(),
                    }
                ],
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v0.0.0-tapedeck-process-kubelet",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                    "kernelVersion": "",
                    "osImage": "process kubelet",
                    "containerRuntimeVersion": "process://",
                    "kubeProxyVersion": "",
                },
            }
        }
        self.client.patch(Node.Status, self.node_name, status, patch_type=PatchType.MERGE)

    def sync_once(self) -> None:
        seen: set[str] = set()
        for obj in self.client.list(Pod, namespace="*"):
            pod = obj.to_dict()
            node = pod["spec"].get("nodeName")
            if (
                not node
                and pod["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"
            ):
                self._bind(pod)
                continue
            if node != self.node_name:
                continue
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            self._sync_pod(pod)
        for uid in set(self._pods) - seen:  # deleted behind our back (force delete)
            self._kill_all(self._pods.pop(uid), signal.SIGKILL)

    # -- per pod -----------------------------------------------------------------------------

    def _bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        binding = Pod.Binding(
            metadata=ObjectMeta(name=meta["name"], namespace=meta["namespace"]),
            target=ObjectReference(apiVersion="v1", kind="Node", name=self.node_name),
        )
        try:
            self.client.create(binding, name=meta["name"], namespace=meta["namespace"])
        except msgspec.ValidationError:
            pass  # bound: the API server answers with a Status, which lightkube cannot decode
        except ApiError as exc:
            if exc.status.code not in (404, 409):
                raise

    def _sync_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        phase = pod.get("status", {}).get("phase")
        running = self._pods.get(uid)
        if meta.get("deletionTimestamp"):
            self._terminate(pod, running)
            return
        if running is None:
            if phase in ("Succeeded", "Failed"):
                return  # finished before a kubelet restart; nothing to run
            running = self._start(pod)
            if running is None:
                return
        self._restart_exited(pod, running)
        self._report(pod, running)

    def _start(self, pod: dict[str, Any]) -> RunningPod | None:
        meta = pod["metadata"]
        directory = self.root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        directory.mkdir(parents=True, exist_ok=True)
        running = RunningPod(meta["uid"], meta["namespace"], meta["name"], directory)
        try:
            base_env = self._base_env(pod, directory)
            for init in pod["spec"].get("initContainers") or []:
                container = self._spawn(pod, init, base_env, directory)
                if container.proc.wait() != 0:
                    running.containers[init["name"]] = container
                    self._report_failure(
                        pod,
                        "InitContainerFailed",
                        f"init container {init['name']} exited {container.proc.returncode}",
                    )
                    self._pods[meta["uid"]] = running
                    return None
            for spec in pod["spec"]["containers"]:
                running.containers[spec["name"]] = self._spawn(pod, spec, base_env, directory)
        except EnvError as exc:
            self._report_waiting(pod, "CreateContainerConfigError", str(exc))
            return None
        except ApiError as exc:
            self._report_waiting(pod, "CreateContainerConfigError", exc.status.message or str(exc))
            return None
        self._pods[meta["uid"]] = running
        log.info("started pod %s/%s", meta["namespace"], meta["name"])
        return running

    def _base_env(self, pod: dict[str, Any], directory: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        spec = pod["spec"]
        if spec.get("automountServiceAccountToken", True) is not False:
            env["KUBECONFIG"] = str(self._service_account_kubeconfig(pod, directory))
        else:
            # Without a token the process must not find the kubelet's or the user's config.
            env["KUBECONFIG"] = os.devnull
        return env

    def _service_account_kubeconfig(self, pod: dict[str, Any], directory: Path) -> Path:
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        request = ServiceAccount.Token(
            metadata=ObjectMeta(name=account, namespace=meta["namespace"]),
            spec=TokenRequestSpec(
                audiences=[],
                expirationSeconds=_TOKEN_SECONDS,
                boundObjectRef=BoundObjectReference(
                    apiVersion="v1", kind="Pod", name=meta["name"], uid=meta["uid"]
                ),
            ),
        )
        token = self.client.create(request, name=account, namespace=meta["namespace"])
        assert token.status is not None
        return write_kubeconfig(
            directory / "serviceaccount.kubeconfig",
            server=self._server,
            ca_pem=self._ca_pem,
            user=f"system:serviceaccount:{meta['namespace']}:{account}",
            token=token.status.token,
            namespace=meta["namespace"],
        )

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        try:
            if kind == "Secret":
                secret = self.client.get(Secret, name, namespace=namespace)
                return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
            cm = self.client.get(ConfigMap, name, namespace=namespace)
            return dict(cm.data or {})
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    def _spawn(
        self, pod: dict[str, Any], spec: dict[str, Any], base_env: dict[str, str], directory: Path
    ) -> Container:
        command = [*(spec.get("command") or []), *(spec.get("args") or [])]
        if not spec.get("command"):
            raise EnvError(
                f"container {spec['name']} has no command: the process kubelet cannot run "
                "an image's entrypoint, so set `command`"
            )
        env = {**base_env, **resolve_env(spec, pod, self._lookup)}
        message_path = directory / f"{spec['name']}.termination-log"
        message_path.unlink(missing_ok=True)
        env[TERMINATION_MESSAGE_ENV] = str(message_path)
        log_path = directory / f"{spec['name']}.log"
        workdir = Path(spec["workingDir"]) if spec.get("workingDir") else directory
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                [expand(part, env) for part in command],
                env=env,
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so signals reach children
            )
        return Container(
            spec["name"],
            proc,
            _now(),
            message_path,
            log_path,
            fallback_to_logs=spec.get("terminationMessagePolicy") == "FallbackToLogsOnError",
        )

    def _restart_exited(self, pod: dict[str, Any], running: RunningPod) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        for spec in pod["spec"]["containers"]:
            container = running.containers.get(spec["name"])
            if container is None or (code := container.proc.poll()) is None:
                continue
            if container.finished_at is None:
                container.finished_at = _now()
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                backoff = min(10 * 2**container.restarts, 300)
                if time.time() - _epoch(container.finished_at) >= backoff:
                    fresh = self._spawn(
                        pod, spec, self._base_env(pod, running.directory), running.directory
                    )
                    fresh.restarts = container.restarts + 1
                    running.containers[spec["name"]] = fresh

    # -- status ------------------------------------------------------------------------------

    def _report(self, pod: dict[str, Any], running: RunningPod) -> None:
        statuses = [self._container_status(pod, c) for c in running.containers.values()]
        codes = [c.proc.poll() for c in running.containers.values()]
        policy = pod["spec"].get("restartPolicy", "Always")
        if any(code is None for code in codes) or policy == "Always":
            phase = "Running"
        elif all(code == 0 for code in codes):
            phase = "Succeeded"
        elif policy == "OnFailure":
            phase = "Running"
        else:
            phase = "Failed"
        ready = phase == "Running" and all(code is None for code in codes)
        status = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": min(c.started_at for c in running.containers.values()),
            "containerStatuses": statuses,
            "conditions": [
                _condition("PodScheduled", True),
                _condition("Initialized", True),
                _condition("ContainersReady", ready),
                _condition("Ready", ready),
            ],
        }
        if status == running.reported:
            return
        self._patch_status(pod, status)
        running.reported = status
        if phase in ("Succeeded", "Failed"):
            log.info("pod %s/%s %s", running.namespace, running.name, phase)

    @staticmethod
    def _container_status(pod: dict[str, Any], container: Container) -> dict[str, Any]:
        state = container.state()
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == container.name)
        return {
            "name": container.name,
            "image": spec.get("image", ""),
            "imageID": "",
            "containerID": f"process://{container.proc.pid}",
            "ready": "running" in state,
            "started": "running" in state,
            "restartCount": container.restarts,
            "state": state,
        }

    def _report_waiting(self, pod: dict[str, Any], reason: str, message: str) -> None:
        log.warning(
            "pod %s/%s: %s: %s",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            reason,
            message,
        )
        self._patch_status(
            pod,
            {
                "phase": "Pending",
                "conditions": [_condition("PodScheduled", True), _condition("Ready", False)],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c.get("image", ""),
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": reason, "message": message}},
                    }
                    for c in pod["spec"]["containers"]
                ],
            },
        )

    def _report_failure(self, pod: dict[str, Any], reason: str, message: str) -> None:
        self._patch_status(pod, {"phase": "Failed", "reason": reason, "message": message})

    def _patch_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            self.client.patch(
                Pod.Status,
                meta["name"],
                {"status": status},
                namespace=meta["namespace"],
                patch_type=PatchType.MERGE,
            )
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    # -- termination -------------------------------------------------------------------------

    def _terminate(self, pod: dict[str, Any], running: RunningPod | None) -> None:
        meta = pod["metadata"]
        if running is not None:
            grace = meta.get("deletionGracePeriodSeconds")
            grace = 30 if grace is None else int(grace)
            if running.stopping_since is None:
                running.stopping_since = time.monotonic()
                self._kill_all(running, signal.SIGTERM)
            alive = any(c.proc.poll() is None for c in running.containers.values())
            if alive and time.monotonic() - running.stopping_since < grace:
                return
            self._kill_all(running, signal.SIGKILL)
            self._pods.pop(running.uid, None)
        try:
            self.client.delete(Pod, meta["name"], namespace=meta["namespace"], grace_period=0)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        log.info("deleted pod %s/%s", meta["namespace"], meta["name"])

    @staticmethod
    def _kill_all(running: RunningPod, sig: signal.Signals) -> None:
        for container in running.containers.values():
            if container.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(container.proc.pid, sig)
            if sig == signal.SIGKILL:
                container.proc.wait()


def _condition(kind: str, ok: bool) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False"}


def _epoch(timestamp: str) -> float:
    return dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
