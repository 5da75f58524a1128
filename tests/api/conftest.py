"""tapedeck-api served for tests, API keys (ServiceAccount tokens with Roles), and checks of
RealtimeKit's bodies."""

from __future__ import annotations

import socket
import threading
import uuid
from typing import Any

import httpx
import uvicorn
from kubernetes import client

from tapedeck_bot.contract import GROUP, PLURAL
from tapedeck_operator.api.app import create_app
from tapedeck_operator.api.auth import KubeAuthorizer
from tapedeck_operator.api.settings import ApiSettings
from tapedeck_operator.api.store import RecordingStore
from tests.realtimekit_api import validate
from tests.waiting import eventually

ACCOUNT, APP = "acct-1", "app-1"


def url(path: str = "") -> str:
    return f"/accounts/{ACCOUNT}/realtime/kit/{APP}/recordings{path}"


class Served:
    """tapedeck-api on uvicorn, on a loopback port, in a thread of the test process."""

    def __init__(self, settings: ApiSettings, kube: client.ApiClient) -> None:
        app = create_app(settings, KubeAuthorizer(kube), RecordingStore(kube))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        eventually(lambda: self.server.started, what="tapedeck-api listening")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


def api_token(kube: client.ApiClient, namespace: str, verbs: list[str]) -> str:
    return api_key(kube, namespace, verbs)[0]


def api_key(kube: client.ApiClient, namespace: str, verbs: list[str]) -> tuple[str, str]:
    """A ServiceAccount's token whose Role grants `verbs` on recordings in `namespace`, and
    the name of the ServiceAccount, its Role and its RoleBinding."""
    name = f"caller-{uuid.uuid4().hex[:6]}"
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rule = {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": verbs}
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": [rule]})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    request = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    token: str = request.status.token
    return token, name


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(response: Any, definition: str, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    validate(body, definition)
    return body


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    validate(body, "ErrorResponse")
    assert body["error"]["code"] == status
    message: str = body["error"]["message"]
    return message
