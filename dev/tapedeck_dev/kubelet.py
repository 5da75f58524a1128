"""The process kubelet: runs pods' containers as local processes. A dev/test tool only.

It registers one Node, binds pending unscheduled pods to it, and runs each container's
`command` + `args` with its env resolved, in a mount namespace of its own (`podmounts.py`):
its emptyDir volumes and its ServiceAccount projection (a TokenRequest token bound to the pod,
ca.crt, namespace) are where the pod spec puts them, and KUBERNETES_SERVICE_HOST/PORT name
the API server, so `kubernetes.config.load_incluster_config()` works as in a cluster and RBAC
applies to the process. Exited containers restart in place as restartPolicy says, with the
kubelet's back-off. Deleting a pod sends SIGTERM, waits the grace period, then SIGKILL, and
removes the pod's directory (its volumes with it). Stopping the kubelet stops its pods too.
Its log endpoint (`kubelet_logs.py`) answers the API server's `kubectl logs` proxying.

Mount namespaces need root.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tapedeck_dev.kubeclient import MERGE_PATCH, api_client, error_message, read_json
from tapedeck_dev.kubelet_logs import LogServer
from tapedeck_dev.podenv import EnvError, expand, resolve_env
from tapedeck_dev.podmounts import (
    SERVICE_ACCOUNT_DIR,
    MountError,
    config_map_files,
    container_mounts,
    in_mount_namespace,
    message_file,
    split_tmp,
    token_projection,
    unsupported_volumes,
    volume_dirs,
    write_atomically,
)
from tapedeck_operator.kube import config_map_contents

__all__ = ["ProcessKubelet", "pod_phase", "restart_delay", "service_env"]

log = logging.getLogger("tapedeck_dev.kubelet")

# What a process inherits from the kubelet: enough to find python and the venv, never the
# kubelet's own credentials.
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
_MESSAGE_LIMIT = 4096
_TIMEOUT = (5.0, 30.0)  # (connect, read) s: an absent API server must not stall the loop
_HEARTBEAT_S = 10.0
_SHUTDOWN_GRACE_S = 5.0  # less than the 30 s the test fixtures give the kubelet to stop
_TOKEN_REFRESH = 0.8  # of a token's lifetime, as the kubelet does
_API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def restart_delay(restarts: int) -> float:
    """Seconds from a container's exit to its restart, when it has restarted `restarts` times.

    The first restart is immediate; later ones back off 10 s, 20 s, 40 s ... up to 300 s
    (the kubelet's CrashLoopBackOff).
    """
    return 0.0 if restarts == 0 else float(min(10 * 2 ** (restarts - 1), 300))


def _restarts_after(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def pod_phase(policy: str, exit_codes: list[int | None]) -> str:
    """The pod's phase from its containers' exit codes (None: running)."""
    if any(code is None for code in exit_codes) or policy == "Always":
        return "Running"
    if all(code == 0 for code in exit_codes):
        return "Succeeded"
    return "Running" if policy == "OnFailure" else "Failed"  # OnFailure: a restart is due


def service_env(server: str) -> dict[str, str]:
    """KUBERNETES_SERVICE_HOST/PORT for the API server at URL `server`, as in every pod."""
    url = urllib.parse.urlsplit(server)
    return {
        "KUBERNETES_SERVICE_HOST": url.hostname or "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(url.port or 443),
    }


def _exit_code(returncode: int) -> int:
    """Popen's -N (killed by signal N) as a container runtime reports it: 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


@dataclass
class Container:
    """One run of a container; a restart is a new Container with `restarts` one higher."""

    name: str
    proc: subprocess.Popen[bytes]
    started_at: str
    message_path: Path
    log_path: Path
    fallback_to_logs: bool
    restarts: int = 0
    last_state: dict[str, Any] | None = None  # the previous run's, once it has restarted
    finished_at: str | None = None
    exited_at: float | None = None  # time.monotonic() when first seen exited

    def exit_code(self) -> int | None:
        code = self.proc.poll()
        return None if code is None else _exit_code(code)

    def state(self) -> dict[str, Any]:
        code = self.proc.poll()
        if code is None:
            return {"running": {"startedAt": self.started_at}}
        terminated: dict[str, Any] = {
            "exitCode": _exit_code(code),
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
    token_refresh_at: float | None = None  # time.time(); None: no ServiceAccount projection


class ProcessKubelet:
    """One node whose pods are local processes."""

    def __init__(
        self,
        api: client.ApiClient,
        root: Path,
        *,
        node_name: str = "tapedeck-dev",
        cpu: str = "2",
        memory: str = "8Gi",
        server: str,
        ca_pem: bytes,
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.root = root
        self.node_name = node_name
        self._capacity = {"cpu": cpu, "memory": memory, "pods": "110"}
        self._server = server
        self._ca_pem = ca_pem
        self._pods: dict[str, RunningPod] = {}
        self._logs: LogServer | None = None
        # Found once on the kubelet's PATH: a pod's env may set a PATH of its own.
        unshare = shutil.which("unshare")
        if unshare is None:
            raise FileNotFoundError("the process kubelet needs `unshare` (util-linux)")
        self._unshare = unshare

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path, root: Path, **kwargs: Any) -> ProcessKubelet:
        api = api_client(kubeconfig)
        configuration = api.configuration
        # The loader writes the kubeconfig's CA into a file; the pods get its bytes.
        ca_file = configuration.ssl_ca_cert
        ca_pem = Path(ca_file).read_bytes() if ca_file else b""
        return cls(api, root, server=configuration.host, ca_pem=ca_pem, **kwargs)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: Any, poll_s: float = 0.3) -> None:
        """Sync until `stop.is_set()`; then stop every pod's processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._logs = LogServer(self.root)
        self._logs.start()
        last_heartbeat = -_HEARTBEAT_S
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - last_heartbeat > _HEARTBEAT_S:
                        self.register_node()
                        last_heartbeat = time.monotonic()
                    self.sync_once()
                except _API_ERRORS as exc:  # the API server may be away; the pods keep running
                    log.warning("sync failed: %s", exc)
                stop.wait(poll_s)
        finally:
            self._logs.stop()
            self._stop_all()

    def _stop_all(self) -> None:
        """SIGTERM every pod, SIGKILL what is left after a short grace.

        A pod outliving its kubelet would run on with no one to report it, and a restarted
        kubelet would start it a second time.
        """
        pods = list(self._pods.values())
        for pod in pods:
            self._kill_all(pod, signal.SIGTERM)
        deadline = time.monotonic() + _SHUTDOWN_GRACE_S
        while time.monotonic() < deadline and any(_alive(pod) for pod in pods):
            time.sleep(0.1)
        for pod in pods:
            self._kill_all(pod, signal.SIGKILL)

    def register_node(self) -> None:
        labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "tapedeck.dev/process-kubelet": "true",
        }
        node = client.V1Node.model_validate(
            {"metadata": {"name": self.node_name, "labels": labels}}
        )
        try:
            read_json(
                self.core.create_node(node, _preload_content=False, _request_timeout=_TIMEOUT)
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
        read_json(
            self.core.patch_node_status(
                self.node_name,
                {"status": self._node_status()},
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
        )

    def _node_status(self) -> dict[str, Any]:
        return {
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
            # Where the API server sends `kubectl logs`: the log endpoint, once running.
            **(
                {"daemonEndpoints": {"kubeletEndpoint": {"Port": self._logs.port}}}
                if self._logs
                else {}
            ),
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

    def sync_once(self) -> None:
        pods = read_json(
            self.core.list_pod_for_all_namespaces(_preload_content=False, _request_timeout=_TIMEOUT)
        )
        seen: set[str] = set()
        for pod in pods.get("items") or []:
            node = pod["spec"].get("nodeName")
            if (
                not node
                and pod["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"
            ):
                self._bind(pod)
                continue
            if node != self.node_name:
                continue
            seen.add(pod["metadata"]["uid"])
            try:
                self._sync_pod(pod)
            except Exception:  # a dev daemon: one bad pod must not stop every other pod
                meta = pod["metadata"]
                log.exception("pod %s/%s: sync failed", meta["namespace"], meta["name"])
        for uid in set(self._pods) - seen:  # deleted behind our back (force delete)
            gone = self._pods.pop(uid)
            self._kill_all(gone, signal.SIGKILL)
            shutil.rmtree(gone.directory, ignore_errors=True)

    # -- per pod -----------------------------------------------------------------------------

    def _bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        binding = client.V1Binding.model_validate(
            {
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
            }
        )
        try:
            read_json(
                self.core.create_namespaced_pod_binding(
                    meta["name"],
                    meta["namespace"],
                    binding,
                    _preload_content=False,
                    _request_timeout=_TIMEOUT,
                )
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _pod_dir(self, meta: dict[str, Any]) -> Path:
        return self.root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"

    def _sync_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        phase = pod.get("status", {}).get("phase")
        running = self._pods.get(meta["uid"])
        if meta.get("deletionTimestamp"):
            self._terminate(pod, running)
            return
        if running is None:
            if phase in ("Succeeded", "Failed"):
                return  # finished before a kubelet restart; nothing to run
            running = self._start(pod)
            if running is None:
                return
        self._refresh_token(pod, running)
        self._restart_exited(pod, running)
        self._report(pod, running)

    def _start(self, pod: dict[str, Any]) -> RunningPod | None:
        meta = pod["metadata"]
        directory = self._pod_dir(meta)
        running = RunningPod(meta["uid"], meta["namespace"], meta["name"], directory)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            self._prepare_volumes(pod, running)
            for init in pod["spec"].get("initContainers") or []:
                container = self._spawn(pod, init, directory)
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
                running.containers[spec["name"]] = self._spawn(pod, spec, directory)
        except (EnvError, MountError) as exc:
            self._report_waiting(pod, "CreateContainerConfigError", str(exc))
            return None
        except ApiException as exc:
            self._report_waiting(pod, "CreateContainerConfigError", error_message(exc))
            return None
        self._pods[meta["uid"]] = running
        log.info("started pod %s/%s", meta["namespace"], meta["name"])
        return running

    def _prepare_volumes(self, pod: dict[str, Any], running: RunningPod) -> None:
        """Create the pod's volume directories and write its ServiceAccount projection."""
        for source in volume_dirs(pod).values():
            (running.directory / source).mkdir(parents=True, exist_ok=True)
        for volume in pod["spec"].get("volumes") or []:
            if "configMap" in volume:
                self._write_config_map(volume, running)
        if skipped := unsupported_volumes(pod):
            log.warning(
                "pod %s/%s: volumes %s are not mounted: the process kubelet only mounts "
                "emptyDir, configMap and the ServiceAccount projection",
                running.namespace,
                running.name,
                skipped,
            )
        if token_projection(pod) is not None:
            self._write_service_account(pod, running)

    def _write_config_map(self, volume: dict[str, Any], running: RunningPod) -> None:
        name = volume["configMap"]["name"]
        data = self._config_map(running.namespace, name)
        if data is None:
            if volume["configMap"].get("optional"):
                return
            raise MountError(f"volume {volume['name']}: ConfigMap {name} not found")
        directory = running.directory / volume_dirs({"spec": {"volumes": [volume]}})[volume["name"]]
        for path, content in config_map_files(volume, data).items():
            write_atomically(directory / path, content)

    def _write_service_account(self, pod: dict[str, Any], running: RunningPod) -> None:
        """The token (a TokenRequest bound to the pod), ca.crt and namespace, as admission asks."""
        projection = token_projection(pod)
        assert projection is not None
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        request = client.AuthenticationV1TokenRequest.model_validate(
            {
                "spec": {
                    "audiences": [projection.audience] if projection.audience else [],
                    "expirationSeconds": projection.expiration_seconds,
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": meta["name"],
                        "uid": meta["uid"],
                    },
                }
            }
        )
        answer = read_json(
            self.core.create_namespaced_service_account_token(
                account,
                meta["namespace"],
                request,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
        )
        directory = running.directory / SERVICE_ACCOUNT_DIR
        write_atomically(directory / projection.path, answer["status"]["token"].encode())
        write_atomically(directory / "ca.crt", self._ca_pem)
        write_atomically(directory / "namespace", meta["namespace"].encode())
        now = time.time()
        expires = dt.datetime.fromisoformat(answer["status"]["expirationTimestamp"]).timestamp()
        running.token_refresh_at = now + _TOKEN_REFRESH * max(expires - now, 0.0)

    def _refresh_token(self, pod: dict[str, Any], running: RunningPod) -> None:
        if running.token_refresh_at is None or time.time() < running.token_refresh_at:
            return
        try:
            self._write_service_account(pod, running)
        except ApiException as exc:  # the old token is still valid for a while: try again
            log.warning(
                "pod %s/%s: token refresh: %s",
                pod["metadata"]["namespace"],
                pod["metadata"]["name"],
                error_message(exc),
            )

    def _config_map(self, namespace: str, name: str) -> dict[str, bytes] | None:
        try:
            config_map = read_json(
                self.core.read_namespaced_config_map(
                    name, namespace, _preload_content=False, _request_timeout=_TIMEOUT
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return config_map_contents(config_map)

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        try:
            if kind == "Secret":
                secret = read_json(
                    self.core.read_namespaced_secret(
                        name, namespace, _preload_content=False, _request_timeout=_TIMEOUT
                    )
                )
                data = secret.get("data") or {}
                return {k: base64.b64decode(v).decode() for k, v in data.items()}
            config_map = read_json(
                self.core.read_namespaced_config_map(
                    name, namespace, _preload_content=False, _request_timeout=_TIMEOUT
                )
            )
            return dict(config_map.get("data") or {})
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _container_env(self, pod: dict[str, Any], spec: dict[str, Any]) -> dict[str, str]:
        env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        env.update(service_env(self._server))
        # A process must never find the kubelet's or the user's kubeconfig: in-cluster only.
        env["KUBECONFIG"] = os.devnull
        env.update(resolve_env(spec, pod, self._lookup))
        return env

    def _spawn(self, pod: dict[str, Any], spec: dict[str, Any], directory: Path) -> Container:
        if not spec.get("command"):
            raise EnvError(
                f"container {spec['name']} has no command: the process kubelet cannot run "
                "an image's entrypoint, so set `command`"
            )
        env = self._container_env(pod, spec)
        command = [expand(part, env) for part in [*spec["command"], *(spec.get("args") or [])]]
        mounts, tmp = split_tmp(container_mounts(pod, spec))
        if tmp is not None:
            env["TMPDIR"] = str(directory / tmp.source)
            (directory / tmp.source).mkdir(parents=True, exist_ok=True)
        message_path = directory / message_file(spec["name"])
        message_path.unlink(missing_ok=True)
        message_path.touch()
        log_path = directory / f"{spec['name']}.log"
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                in_mount_namespace(mounts, command, spec.get("workingDir")),
                executable=self._unshare,
                env=env,
                cwd=directory,
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
            if container is None or (code := container.exit_code()) is None:
                continue
            if container.exited_at is None:
                container.exited_at = time.monotonic()
                container.finished_at = _now()
            if not _restarts_after(policy, code):
                continue
            if time.monotonic() - container.exited_at < restart_delay(container.restarts):
                continue
            last_state = container.state()
            try:
                fresh = self._spawn(pod, spec, running.directory)
            except (EnvError, MountError, ApiException) as exc:  # retried on the next sync
                log.warning(
                    "pod %s/%s: restart of %s: %s",
                    running.namespace,
                    running.name,
                    spec["name"],
                    exc,
                )
                continue
            fresh.restarts = container.restarts + 1
            fresh.last_state = last_state
            running.containers[spec["name"]] = fresh

    # -- status ------------------------------------------------------------------------------

    def _report(self, pod: dict[str, Any], running: RunningPod) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        codes = [c.exit_code() for c in running.containers.values()]
        phase = pod_phase(policy, codes)
        ready = phase == "Running" and all(code is None for code in codes)
        status = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": min(c.started_at for c in running.containers.values()),
            "containerStatuses": [
                _container_status(pod, c, policy) for c in running.containers.values()
            ],
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
            read_json(
                self.core.patch_namespaced_pod_status(
                    meta["name"],
                    meta["namespace"],
                    {"status": status},
                    _content_type=MERGE_PATCH,
                    _preload_content=False,
                    _request_timeout=_TIMEOUT,
                )
            )
        except ApiException as exc:
            if exc.status != 404:
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
            if _alive(running) and time.monotonic() - running.stopping_since < grace:
                return
            self._kill_all(running, signal.SIGKILL)
            self._pods.pop(running.uid, None)
        # Its processes are gone and their mount namespaces with them: the volumes can go.
        shutil.rmtree(self._pod_dir(meta), ignore_errors=True)
        try:
            read_json(
                self.core.delete_namespaced_pod(
                    meta["name"],
                    meta["namespace"],
                    grace_period_seconds=0,
                    _preload_content=False,
                    _request_timeout=_TIMEOUT,
                )
            )
        except ApiException as exc:
            if exc.status != 404:
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


def _container_status(pod: dict[str, Any], container: Container, policy: str) -> dict[str, Any]:
    state = container.state()
    code = container.exit_code()
    last_state = container.last_state or {}
    if code is not None and _restarts_after(policy, code):
        # Between a run and its restart, as the kubelet shows it.
        last_state = state
        delay = restart_delay(container.restarts)
        state = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {delay:.0f}s restarting failed container={container.name}",
            }
        }
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
        "lastState": last_state,
    }


def _alive(pod: RunningPod) -> bool:
    return any(c.proc.poll() is None for c in pod.containers.values())


def _condition(kind: str, ok: bool) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False"}
