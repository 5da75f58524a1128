"""tapedeck-api's latency on loopback (issue: REST API), against a real API server.

- api_start_p50_ms: POST /recordings to its 201 (a TokenReview, a SubjectAccessReview, the
  duplicate check and the create), median of STARTS, each for its own meeting.
- api_list_1000_p50_ms: GET /recordings, one page of 100, with 1000 Recordings in the
  namespace, median of LISTS.
The caller is a ServiceAccount token with a Role on recordings, as an app would hold.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import yaml

from bench.operator_scale import local_stack
from bench.record import Figure
from tapedeck_bot.contract import API_VERSION, KIND
from tapedeck_dev.api_server import ServedApi
from tapedeck_dev.kubeclient import api_client
from tapedeck_dev.stack import kubectl_output, render_crd, wait_established
from tapedeck_operator.api.auth import AUDIENCE
from tapedeck_operator.api.requests import MEETING_LABEL
from tapedeck_operator.api.settings import ApiSettings

STARTS = 40
LISTS = 20
TOTAL = 1000
NAMESPACE = "bench-api"
APP = "bench"
BASE = f"/accounts/acct/realtime/kit/{APP}/recordings"


def _token(kubectl: list[str]) -> str:
    rule = {"apiGroups": ["tapedeck.dev"], "resources": ["recordings"], "verbs": ["create", "list"]}
    # The key's audience, as `kubectl tapedeck api-key` mints it.
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "app"}, "rules": [rule]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "app"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app"},
         "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": NAMESPACE}]},
    ]  # fmt: skip
    kubectl_output(kubectl, "-n", NAMESPACE, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
    return kubectl_output(
        kubectl, "-n", NAMESPACE, "create", "token", "app", f"--audience={AUDIENCE}"
    ).strip()


def _recordings(count: int, offset: int) -> str:
    items: list[dict[str, Any]] = [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": f"r{offset + n}", "labels": {MEETING_LABEL: str(offset + n)}},
            "spec": {
                "meeting": {
                    "id": str(offset + n),
                    "janus": {"url": "http://127.0.0.1:9/janus", "room": offset + n + 1},
                },
                "state": "Stopped",
            },
        }
        for n in range(count)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _p50_ms(call: Any, runs: int) -> tuple[float, list[float]]:
    times = []
    for n in range(runs):
        started = time.perf_counter()
        call(n)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), times


def run() -> list[Figure]:
    with local_stack() as stack:
        kubectl = stack.kubectl
        kubectl_output(kubectl, "apply", "-f", "-", stdin=render_crd())
        wait_established(kubectl, "crd/recordings.tapedeck.dev")
        stack.namespace(NAMESPACE)
        token = _token(kubectl)
        settings = ApiSettings.model_validate(
            {"apps": {APP: {"namespace": NAMESPACE, "janusUrl": "http://127.0.0.1:9/janus"}}}
        )
        served = ServedApi(settings, api_client(str(stack.cluster.kubeconfig)), freeze=True)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            http = served.http

            def start(n: int) -> None:
                body = {"meeting_id": str(100_000 + n)}
                assert http.post(BASE, json=body, headers=headers).status_code == 201

            start(STARTS)  # a first request warms the connections
            start_p50, starts = _p50_ms(start, STARTS)
            for offset in range(0, TOTAL - STARTS - 1, 200):
                count = min(200, TOTAL - STARTS - 1 - offset)
                kubectl_output(kubectl, "-n", NAMESPACE, "create", "-f", "-",
                               stdin=_recordings(count, offset))  # fmt: skip

            def page(n: int) -> None:
                answer = http.get(BASE, params={"per_page": 100}, headers=headers).json()
                assert answer["paging"]["total_count"] == TOTAL, answer["paging"]
                assert len(answer["data"]) == 100

            list_p50, lists = _p50_ms(page, LISTS)
        finally:
            served.close()
    return [
        Figure(
            "api_start_p50_ms",
            start_p50,
            "ms",
            f"POST /recordings to 201 on loopback, {STARTS} starts; p90 "
            f"{sorted(starts)[int(0.9 * len(starts))]:.1f} ms",
        ),
        Figure(
            "api_list_1000_p50_ms",
            list_p50,
            "ms",
            f"GET /recordings, a page of 100 of {TOTAL}, {LISTS} lists; p90 "
            f"{sorted(lists)[int(0.9 * len(lists))]:.1f} ms",
        ),
    ]
