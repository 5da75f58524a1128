"""The operator at scale and end to end (issue: operator).

- operator_500_pods_s / operator_500_peak_rss_mb: 500 Recordings created at once, no kubelet;
  seconds until all 500 bot pods exist, and the operator's peak RSS (VmHWM) meanwhile.
- apply_to_recording_s_median: `kubectl apply` to phase RECORDING, with the process kubelet,
  real Janus and 2 synthetic participants; median of RUNS.
- bot_status_writes_per_min: status patches one bot made in a steady 5-minute recording, as
  the bot counts them (its "status writes" log line), per minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.meeting_load import janus_server, start_participants
from bench.record import Figure
from tapedeck_dev.binaries import ensure_binaries
from tapedeck_dev.cluster import LocalCluster
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.participant import ensure_room
from tapedeck_dev.stack import (
    create_restricted_namespace,
    install_operator,
    kubelet_command,
    operator_command,
    write_local_settings,
)

RUNS = 5
COUNT = 500
STEADY_S = 300.0


class Stack:
    """A control plane, the operator (least privilege) and optionally the process kubelet."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cluster = LocalCluster(root / "cluster")
        self.kubectl = [str(ensure_binaries().kubectl), f"--kubeconfig={self.cluster.kubeconfig}"]
        self.procs: list[subprocess.Popen[bytes]] = []

    def kubectl_run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*self.kubectl, *args], input=stdin, capture_output=True, text=True, check=True
        )
        return done.stdout

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def start_operator(self, **settings: Any) -> subprocess.Popen[bytes]:
        identity = install_operator(self.kubectl, self.cluster.kubeconfig, self.root / "op.kcfg")
        config = write_local_settings(
            self.root / "operator.yaml", metricsPort=0, healthPort=0, **settings
        )
        return self._spawn(
            "operator", operator_command(config), dict(os.environ, KUBECONFIG=str(identity))
        )

    def start_kubelet(self) -> None:
        command = kubelet_command(self.cluster.kubeconfig, self.root / "pods")
        self._spawn("kubelet", command, dict(os.environ))

    def namespace(self, name: str) -> None:
        create_restricted_namespace(self.kubectl, name)
        while not self.kubectl_run("-n", name, "get", "sa", "default", "--ignore-not-found"):
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.cluster.down()


@contextmanager
def local_stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp))
        stack.cluster.up()
        try:
            yield stack
        finally:
            stack.stop()


def recording(name: str, meeting: str, url: str, room: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tapedeck.dev/v1alpha1",
        "kind": "Recording",
        "metadata": {"name": name},
        "spec": {"meeting": {"id": meeting, "janus": {"url": url, "room": room}}, **spec},
    }


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def _five_hundred() -> list[Figure]:
    with local_stack() as stack:
        operator = stack.start_operator()
        stack.namespace("load")
        time.sleep(5)  # the operator is watching
        items = [
            recording(f"r{i}", f"m{i}", "http://127.0.0.1:8088/janus", 1) for i in range(COUNT)
        ]
        manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})
        started = time.monotonic()
        stack.kubectl_run("-n", "load", "create", "-f", "-", stdin=manifest)
        created = time.monotonic() - started
        pods = 0
        while pods < COUNT and time.monotonic() - started < 600:
            time.sleep(1)
            out = stack.kubectl_run("-n", "load", "get", "pods", "-o", "name")
            pods = len(out.split())
        elapsed = time.monotonic() - started
        peak = _peak_rss_mb(operator.pid)
    return [
        Figure(
            "operator_500_pods_s",
            elapsed,
            "s",
            f"{pods} of {COUNT} bot pods; `kubectl create` of the 500 took {created:.1f} s",
        ),
        Figure("operator_500_peak_rss_mb", peak, "MiB", "operator VmHWM over that run"),
    ]


def _phase(stack: Stack, name: str) -> str:
    out = stack.kubectl_run("-n", "rec", "get", "recording", name, "-o", "jsonpath={.status.phase}")
    return out.strip()


def _end_to_end(janus: JanusServer) -> list[Figure]:
    room = random.randint(100_000, 999_999)
    asyncio.run(ensure_room(janus.http_url, room))
    people = start_participants(janus.http_url, room, 2)
    try:
        with local_stack() as stack:
            stack.start_operator()
            stack.start_kubelet()
            stack.namespace("rec")
            time.sleep(5)
            times = []
            for run in range(RUNS):
                name = f"apply-{run}"
                manifest = recording(name, name, janus.http_url, room, tracks={"enabled": True})
                started = time.monotonic()
                stack.kubectl_run("-n", "rec", "apply", "-f", "-", stdin=json.dumps(manifest))
                while _phase(stack, name) != "RECORDING":
                    time.sleep(0.05)
                times.append(time.monotonic() - started)
                stack.kubectl_run("-n", "rec", "delete", "recording", name, "--timeout=120s")
            writes = _steady_writes(stack, janus, room)
    finally:
        for person in people:
            person.send_signal(signal.SIGTERM)
            person.wait(timeout=20)
    return [
        Figure(
            "apply_to_recording_s_median",
            statistics.median(times),
            "s",
            f"composite + tracks, 2 participants; runs {', '.join(f'{t:.2f}' for t in times)}",
        ),
        Figure(
            "bot_status_writes_per_min",
            writes * 60 / STEADY_S,
            "writes/min",
            f"{writes} patches by the bot in {STEADY_S:.0f} s, start and stop included",
        ),
    ]


def _steady_writes(stack: Stack, janus: JanusServer, room: int) -> int:
    name = "steady"
    manifest = recording(name, name, janus.http_url, room, tracks={"enabled": True})
    stack.kubectl_run("-n", "rec", "apply", "-f", "-", stdin=json.dumps(manifest))
    while _phase(stack, name) != "RECORDING":
        time.sleep(0.2)
    time.sleep(STEADY_S)
    stack.kubectl_run("-n", "rec", "patch", "recording", name, "--type=merge", "-p",
                      '{"spec": {"state": "Stopped"}}')  # fmt: skip
    while _phase(stack, name) != "UPLOADED":
        time.sleep(0.5)
    time.sleep(2)
    logs = sorted((stack.root / "pods").glob("rec_steady-bot-1_*/*.log"))
    for line in reversed(logs[-1].read_text().splitlines() if logs else []):
        if '"status writes"' in line:
            return int(json.loads(line)["writes"])
    raise RuntimeError(f"no status writes line in {logs}")


def run() -> list[Figure]:
    figures = _five_hundred()
    with tempfile.TemporaryDirectory() as tmp:
        janus = janus_server(Path(tmp) / "janus")
        try:
            figures += _end_to_end(janus)
        finally:
            janus.down()
    return figures
