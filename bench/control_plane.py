"""How long the local control plane takes to come up, and a pod to run on the process kubelet.

Not a product figure: it bounds what every cluster test pays before it starts.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from kubernetes import client

from bench.record import Figure
from tapedeck_dev.cluster import LocalCluster
from tapedeck_dev.kubeclient import api_client, read_json
from tapedeck_dev.kubelet import ProcessKubelet

RUNS = 3


def _pod_to_done(core: client.CoreV1Api, name: str) -> float:
    pod = client.V1Pod.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "c", "image": "none", "command": [sys.executable, "-c", "pass"]}
                ],
            },
        }
    )
    started = time.monotonic()
    read_json(core.create_namespaced_pod("default", pod, _preload_content=False))
    while True:
        got = read_json(core.read_namespaced_pod(name, "default", _preload_content=False))
        if got.get("status", {}).get("phase") == "Succeeded":
            return time.monotonic() - started
        time.sleep(0.02)


def _has_default_service_account(core: client.CoreV1Api) -> bool:
    accounts = read_json(core.list_namespaced_service_account("default", _preload_content=False))
    return bool(accounts["items"])


def run() -> list[Figure]:
    ups: list[float] = []
    pods: list[float] = []
    for i in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            cluster = LocalCluster(Path(tmp) / "cluster")
            started = time.monotonic()
            cluster.up()
            ups.append(time.monotonic() - started)
            api = api_client(cluster.kubeconfig)
            core = client.CoreV1Api(api)
            kubelet = ProcessKubelet.from_kubeconfig(cluster.kubeconfig, Path(tmp) / "kubelet")
            stop = threading.Event()
            thread = threading.Thread(target=kubelet.run, args=(stop,))
            thread.start()
            try:
                while not _has_default_service_account(core):
                    time.sleep(0.1)  # pods are refused until the default ServiceAccount exists
                pods.append(_pod_to_done(core, f"bench-{i}"))
            finally:
                stop.set()
                thread.join()
                api.close()
                cluster.down()
    return [
        Figure(
            "dev_control_plane_up_s",
            statistics.median(ups),
            "s",
            f"etcd + kube-apiserver ready, {RUNS} runs",
        ),
        Figure(
            "dev_pod_create_to_succeeded_s",
            statistics.median(pods),
            "s",
            f"process kubelet, `python -c pass`, {RUNS} runs",
        ),
    ]
