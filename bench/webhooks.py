"""Webhook delivery latency (issue: webhooks).

- webhook_delivery_p50_ms: from a phase transition written to a Recording's status (as a bot
  writes it: history appended under its resourceVersion) to the receiver's 200 for that
  event's recording.statusUpdate, on loopback, through the real API server's watch and the
  operator's signing and egress. No kubelet: the bots' pods stay Pending, and the bench
  writes the transitions the bots would. Median (and p90) of TRANSITIONS, one at a time.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from typing import Any

from bench.operator_scale import Stack, local_stack, recording
from bench.record import Figure
from tapedeck_dev.kubeclient import api_client
from tapedeck_dev.webhook_receiver import Receiver, new_secret
from tapedeck_operator.kube import Conflict, KubeClusterApi
from tapedeck_operator.webhooks.delivery import Event, webhook_id
from tapedeck_operator.webhooks.payloads import STATUS_UPDATE

RECORDINGS = 5
TRANSITIONS = 40
NAMESPACE = "hooks"


def _append_transition(api: KubeClusterApi, name: str, phase: str) -> tuple[float, int]:
    """Append to the history as the bot does; returns when the write went out, and the index."""
    while True:
        body = api.get_recording(NAMESPACE, name)
        history = (body.get("status") or {}).get("history") or []
        entry = {"phase": phase, "at": dt.datetime.now(dt.UTC).isoformat()}
        fields = {"history": [*history, entry], "phase": phase}
        started = time.time()
        try:
            api.patch_recording_status(NAMESPACE, name, fields, body["metadata"]["resourceVersion"])
        except Conflict:
            continue  # the operator wrote meanwhile: append to the fresh history
        return started, len(history)


def _arrival(receiver: Receiver, event_id: str, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in receiver.requests("/hook"):
            if request.id == event_id and request.answered == 200:
                return request.at
        time.sleep(0.002)
    raise RuntimeError(f"event {event_id} never arrived")


def run() -> list[Figure]:
    receiver = Receiver()
    receiver.start()
    latencies: list[float] = []
    try:
        with local_stack() as stack:
            stack.start_operator(webhooks={"allowLoopbackDestinations": True})
            stack.namespace(NAMESPACE)
            stack.kubectl_run(
                "-n", NAMESPACE, "create", "secret", "generic", "webhook",
                f"--from-literal=key={new_secret()}",
            )  # fmt: skip
            hook = {"url": receiver.url("/hook"), "secretRef": {"name": "webhook", "key": "key"}}
            uids = _create(stack, hook)
            api = KubeClusterApi(api_client(stack.cluster.kubeconfig))
            for n in range(TRANSITIONS):
                name = f"hooked-{n % RECORDINGS}"
                phase = "PAUSED" if (n // RECORDINGS) % 2 == 0 else "RECORDING"
                written, index = _append_transition(api, name, phase)
                event = webhook_id(uids[name], Event(STATUS_UPDATE, f"history/{index}"))
                latencies.append((_arrival(receiver, event) - written) * 1000)
    finally:
        receiver.close()
    ordered = sorted(latencies)
    return [
        Figure(
            "webhook_delivery_p50_ms",
            statistics.median(latencies),
            "ms",
            f"{TRANSITIONS} transitions over {RECORDINGS} Recordings; p90 "
            f"{ordered[int(len(ordered) * 0.9)]:.0f} ms, max {ordered[-1]:.0f} ms; goal <= 500",
        )
    ]


def _create(stack: Stack, hook: dict[str, Any]) -> dict[str, str]:
    """The Recordings, and a moment for the operator to see them and send their INVOKED."""
    uids = {}
    for i in range(RECORDINGS):
        name = f"hooked-{i}"
        manifest = recording(name, name, "http://127.0.0.1:1/janus", 1, webhooks=[hook])
        stack.kubectl_run("-n", NAMESPACE, "apply", "-f", "-", stdin=json.dumps(manifest))
        uid = stack.kubectl_run(
            "-n", NAMESPACE, "get", "recording", name, "-o", "jsonpath={.metadata.uid}"
        )
        uids[name] = uid.strip()
    time.sleep(2)  # the operator has seen them all
    return uids
