"""tapedeck-api served for tests, API keys (ServiceAccount tokens with Roles), and checks of
RealtimeKit's bodies."""

from __future__ import annotations

import uuid
from typing import Any

from kubernetes import client

from tapedeck_operator.api.auth import AUDIENCE
from tapedeck_operator.plugin.apikey import api_key_objects
from tests.realtimekit_api import validate

ACCOUNT, APP = "acct-1", "app-1"


def url(path: str = "") -> str:
    return f"/accounts/{ACCOUNT}/realtime/kit/{APP}/recordings{path}"


def api_token(kube: client.ApiClient, namespace: str, verbs: list[str]) -> str:
    return api_key(kube, namespace, verbs)[0]


def api_key(
    kube: client.ApiClient, namespace: str, verbs: list[str], *, audience: str = AUDIENCE
) -> tuple[str, str]:
    """A ServiceAccount's token whose Role grants `verbs` on recordings in `namespace`, as
    `kubectl tapedeck api-key` makes one, and the name of the ServiceAccount, Role and
    RoleBinding."""
    name = f"caller-{uuid.uuid4().hex[:6]}"
    account, role, binding = api_key_objects(name, namespace, verbs)
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount.model_validate(account)
    )
    rbac.create_namespaced_role(namespace, client.V1Role.model_validate(role))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding.model_validate(binding))
    request = core.create_namespaced_service_account_token(
        name,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[audience], expiration_seconds=3600)
        ),
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
