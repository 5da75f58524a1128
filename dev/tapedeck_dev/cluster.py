"""A real local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager.

No scheduler and no kubelet: the process kubelet (`kubelet.py`) binds and runs pods. All
servers bind to 127.0.0.1. State (certificates, etcd data, logs, pids, kubeconfigs) lives in
one directory, so `up` is idempotent and `down` stops exactly what `up` started.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tapedeck_dev.binaries import Binaries, cache_root, ensure_binaries
from tapedeck_dev.certs import write_control_plane_pki

__all__ = [
    "ClusterError",
    "LocalCluster",
    "default_cluster_dir",
    "free_port",
    "write_kubeconfig",
]

_CONTROLLERS = (
    "garbagecollector,namespace,deployment,replicaset,job,serviceaccount,serviceaccount-token"
)
_START_TIMEOUT_S = 90.0


class ClusterError(RuntimeError):
    """The control plane could not be started or reached."""


def default_cluster_dir() -> Path:
    return Path(os.environ.get("TAPEDECK_CLUSTER_DIR", cache_root() / "cluster"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    user: str,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> Path:
    """Write a one-context kubeconfig with embedded credentials (a client cert or a token)."""
    credentials: dict[str, str] = {}
    if cert_pem is not None and key_pem is not None:
        credentials = {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}
    if token is not None:
        credentials = {"token": token}
    context: dict[str, str] = {"cluster": "tapedeck", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "tapedeck",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "tapedeck", "context": context}],
        "current-context": "tapedeck",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())


class LocalCluster:
    """One control plane rooted at a state directory."""

    def __init__(self, root: Path | None = None, binaries: Binaries | None = None) -> None:
        self.root = root or default_cluster_dir()
        self._binaries = binaries
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # those this object started

    @property
    def kubeconfig(self) -> Path:
        """The admin (system:masters) kubeconfig."""
        return self.root / "admin.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._ports().apiserver}"

    def binaries(self) -> Binaries:
        if self._binaries is None:
            self._binaries = ensure_binaries()
        return self._binaries

    # -- lifecycle ---------------------------------------------------------------------------

    def up(self) -> Path:
        """Start whatever is not running; return the admin kubeconfig path."""
        if self.is_healthy():
            return self.kubeconfig
        self.down()
        self._prepare()
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):  # each needs the last
            self.start_component(name)
        return self.kubeconfig

    def down(self) -> None:
        """Stop every process `up` started (SIGTERM, then SIGKILL after 10 s)."""
        pids = self._pids()
        for name in reversed(list(pids)):
            _terminate(pids[name])
            if child := self._children.pop(name, None):
                child.wait()
        (self.root / "pids.json").unlink(missing_ok=True)

    def stop_component(self, name: str) -> None:
        """Stop one running component (SIGTERM, then SIGKILL after 10 s), as in an outage.

        `start_component(name)` brings it back on the same port with the same arguments.
        """
        pids = self._pids()
        if name not in pids:
            raise ClusterError(f"{name} is not running here (running: {sorted(pids)})")
        _terminate(pids.pop(name))
        if child := self._children.pop(name, None):
            child.wait()
        (self.root / "pids.json").write_text(json.dumps(pids))

    def start_component(self, name: str) -> None:
        """Start one component (at `up`, or one stopped by `stop_component`); return once it
        is ready."""
        ports = self._ports()
        starts: dict[str, tuple[list[str], Callable[[], bool]]] = {
            "etcd": (self._etcd_args(ports), lambda: self._etcd_ready(ports)),
            "kube-apiserver": (self._apiserver_args(ports), self._apiserver_ready),
            # It serves no health endpoint (--secure-port=0): running is all there is to see.
            "kube-controller-manager": (self._controller_manager_args(), lambda: True),
        }
        if name not in starts:
            raise ClusterError(f"no component {name!r}: one of {sorted(starts)}")
        if name in self._pids():
            raise ClusterError(f"{name} is already running")
        args, ready = starts[name]
        self._spawn(name, args)
        self._wait(ready, name)

    def is_healthy(self) -> bool:
        pids = self._pids()
        return len(pids) == 3 and all(_alive(p) for p in pids.values()) and self._apiserver_ready()

    # -- setup -------------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        if not (self.pki / "ca.crt").exists():
            self.pki.mkdir(exist_ok=True)
            write_control_plane_pki(self.pki)
        if not (self.root / "ports.json").exists():
            (self.root / "ports.json").write_text(json.dumps(Ports.pick().__dict__))
        ca = (self.pki / "ca.crt").read_bytes()
        write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca_pem=ca,
            user="tapedeck-admin",
            cert_pem=(self.pki / "admin.crt").read_bytes(),
            key_pem=(self.pki / "admin.key").read_bytes(),
        )
        write_kubeconfig(
            self.root / "controller-manager.kubeconfig",
            server=self.server,
            ca_pem=ca,
            user="system:kube-controller-manager",
            cert_pem=(self.pki / "controller-manager.crt").read_bytes(),
            key_pem=(self.pki / "controller-manager.key").read_bytes(),
        )

    def _ports(self) -> Ports:
        return Ports(**json.loads((self.root / "ports.json").read_text()))

    def _etcd_args(self, ports: Ports) -> list[str]:
        client = f"http://127.0.0.1:{ports.etcd_client}"
        peer = f"http://127.0.0.1:{ports.etcd_peer}"
        return [
            str(self.binaries().etcd),
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync=true",  # a throwaway store: durability costs seconds per test
            "--log-level=warn",
        ]

    def _apiserver_args(self, ports: Ports) -> list[str]:
        pki = self.pki
        return [
            str(self.binaries().kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            f"--secure-port={ports.apiserver}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",  # machines without a default route need it
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--cert-dir={self.root / 'apiserver-certs'}",
            "--allow-privileged=false",
            "--profiling=false",
            # `kubectl logs` goes to the process kubelet at its node's InternalIP, 127.0.0.1;
            # its Hostname resolves nowhere.
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _controller_manager_args(self) -> list[str]:
        kubeconfig = self.root / "controller-manager.kubeconfig"
        return [
            str(self.binaries().kube_controller_manager),
            f"--kubeconfig={kubeconfig}",
            f"--controllers={_CONTROLLERS}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki / 'sa.key'}",
            f"--root-ca-file={self.pki / 'ca.crt'}",
            "--leader-elect=false",
            "--secure-port=0",
            "--bind-address=127.0.0.1",
            "--profiling=false",
        ]

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives `tapedeck-dev cluster up`; `down` stops it
            )
        self._children[name] = proc
        pids = self._pids()
        pids[name] = proc.pid
        (self.root / "pids.json").write_text(json.dumps(pids))

    def _pids(self) -> dict[str, int]:
        path = self.root / "pids.json"
        if not path.exists():
            return {}
        pids: dict[str, int] = json.loads(path.read_text())
        return pids

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if ready():
                return
            pid = self._pids().get(what)
            if pid is not None and not _alive(pid):
                break
            time.sleep(0.2)
        tail = _tail(self.logs / f"{what}.log")
        raise ClusterError(f"{what} did not become ready; last log lines:\n{tail}")

    # -- health ------------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def _etcd_ready(self, ports: Ports) -> bool:
        return self._http_ok(f"http://127.0.0.1:{ports.etcd_client}/health")

    def _apiserver_ready(self) -> bool:
        if not (self.root / "ports.json").exists() or not (self.pki / "ca.crt").exists():
            return False
        return self._http_ok(f"{self.server}/readyz", self._ssl_context())

    @staticmethod
    def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _terminate(pid: int, grace_s: float = 10.0) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
