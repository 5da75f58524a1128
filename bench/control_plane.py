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

from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Pod, ServiceAccount

from bench.record import Figure
from tapedeck_dev.cluster import LocalCluster
from tapedeck_dev.kubelet import ProcessKubelet

RUNS = 3


def _pod_to_done(client: Client, name: str) -> float:
    pod = Pod.from_dict(
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
    client.create(pod, namespace="default")
    while True:
        status = client.get(Pod, name, namespace="default").status
        if status is not None and status.phase == "Succeeded":
            return time.monotonic() - started
        time.sleep(0.02)


def run() -> list[Figure]:
    ups: list[float] = []
    pods: list[float] = []
    for i in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            cluster = LocalCluster(Path(tmp) / "cluster")
            started = time.monotonic()
            cluster.up()
            ups.append(time.monotonic() - started)
            client = Client(KubeConfig.from_file(cluster.kubeconfig))
            kubelet = ProcessKubelet.from_kubeconfig(cluster.kubeconfig, Path(tmp) / "kubelet")
            stop = threading.Event()
            thread = threading.Thread(target=kubelet.run, args=(stop,))
            thread.start()
            try:
                while not list(client.list(ServiceAccount, namespace="default")):
                    time.sleep(0.1)  # pods are refused until the default ServiceAccount exists
                pods.append(_pod_to_done(client, f"bench-{i}"))
            finally:
                stop.set()
                thread.join()
                client.close()
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
