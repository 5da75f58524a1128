"""tapedeck-api against the real API server: RealtimeKit's endpoints read and write
Recordings, every body is RealtimeKit's, and Kubernetes RBAC decides who may do what (service
account tokens with Roles as API keys). The operator is not running here: the test writes the
status it would write."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from kubernetes import client

from tapedeck_bot.contract import GROUP, PLURAL, VERSION
from tapedeck_operator.api.app import create_app
from tapedeck_operator.api.auth import KubeAuthorizer
from tapedeck_operator.api.settings import ApiSettings
from tapedeck_operator.api.store import RecordingStore
from tests.kube import read
from tests.realtimekit_api import recording_fields, validate
from tests.waiting import eventually

ACCOUNT, APP = "acct-1", "app-1"
MEETING = "0b7f1c2d-3e4f-4b9a-9f4e-6f2c3c4e2d52"


def _url(path: str = "") -> str:
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


@pytest.fixture
def api(kube: client.ApiClient, crd: dict[str, object], namespace: str) -> Iterator[httpx.Client]:
    settings = ApiSettings.model_validate(
        {
            "apps": {
                APP: {
                    "namespace": namespace,
                    "janusUrl": "http://127.0.0.1:18088/janus",
                    "rooms": {MEETING: 1234},
                }
            }
        }
    )
    served = Served(settings, kube)
    try:
        yield served.http
    finally:
        served.close()


def _token(kube: client.ApiClient, namespace: str, verbs: list[str]) -> str:
    return _api_key(kube, namespace, verbs)[0]


def _api_key(kube: client.ApiClient, namespace: str, verbs: list[str]) -> tuple[str, str]:
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


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ok(response: Any, definition: str, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    validate(body, definition)
    return body


def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    validate(body, "ErrorResponse")
    assert body["error"]["code"] == status
    message: str = body["error"]["message"]
    return message


def test_a_recording_through_the_api_is_a_recording_in_kubernetes(
    api: httpx.Client, kube: client.ApiClient, namespace: str
) -> None:
    token = _token(kube, namespace, ["create", "list", "get", "patch"])
    request = {"meeting_id": MEETING, "max_seconds": 600, "file_name_prefix": "standup"}
    validate(request, "StartRecordingRequest")
    started = _ok(api.post(_url(), json=request, headers=_as(token)), "GetRecordingResponse", 201)
    data = started["data"]
    assert set(data) <= recording_fields()
    assert data["status"] == "INVOKED"
    recording_id = data["id"]

    # The same Recording, as kubectl sees it.
    custom = client.CustomObjectsApi(kube)
    (stored,) = [
        r
        for r in read(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL)[
            "items"
        ]
        if r["metadata"]["uid"] == recording_id
    ]  # type: ignore[index]
    assert stored["spec"]["meeting"] == {
        "id": MEETING,
        "janus": {"url": "http://127.0.0.1:18088/janus", "room": 1234},
    }
    assert (stored["spec"]["maxSeconds"], stored["spec"]["fileNamePrefix"]) == (600, "standup")
    name = stored["metadata"]["name"]

    got = _ok(api.get(_url(f"/{recording_id}"), headers=_as(token)), "GetRecordingResponse")
    assert got["data"]["id"] == recording_id
    for action, state in (("pause", "Paused"), ("resume", "Recording")):
        body = {"action": action}
        validate(body, "RecordingActionRequest")
        _ok(
            api.put(_url(f"/{recording_id}"), json=body, headers=_as(token)), "GetRecordingResponse"
        )
        spec = read(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
        assert spec is not None
        assert spec["spec"]["state"] == state

    again = api.post(_url(), json={"meeting_id": MEETING}, headers=_as(token))
    assert recording_id in _error(again, 409)  # names the active recording
    active = _ok(
        api.get(_url(f"/active-recording/{MEETING}"), headers=_as(token)), "ActiveRecordingResponse"
    )
    assert active["data"]["id"] == recording_id
    listed = _ok(
        api.get(_url(), params={"meeting_id": MEETING, "status": "INVOKED"}, headers=_as(token)),
        "ListRecordingsResponse",
    )
    assert [r["id"] for r in listed["data"]] == [recording_id]
    assert listed["paging"] == {"total_count": 1, "start_offset": 1, "end_offset": 1}
    none = _ok(
        api.get(_url(), params={"status": "UPLOADED"}, headers=_as(token)), "ListRecordingsResponse"
    )
    assert none["data"] == []

    _ok(
        api.put(_url(f"/{recording_id}"), json={"action": "stop"}, headers=_as(token)),
        "GetRecordingResponse",
    )
    # What the operator and the bot would write, then the API reads it back.
    custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {
            "status": {
                "phase": "UPLOADED",
                "history": [{"phase": "UPLOADED", "at": "2026-11-27T09:01:00Z"}],
                "stopReason": "STOPPED",
                "durationSeconds": 42.4,
            }
        },
        _content_type="application/merge-patch+json",
    )
    done = _ok(api.get(_url(f"/{recording_id}"), headers=_as(token)), "GetRecordingResponse")
    assert (done["data"]["status"], done["data"]["recording_duration"]) == ("UPLOADED", 42)
    assert done["data"]["stop_reason"] == {"reason": "API_CALL"}
    assert "no active recording" in _error(
        api.get(_url(f"/active-recording/{MEETING}"), headers=_as(token)), 404
    )


def test_kubernetes_rbac_decides_who_may_do_what(
    api: httpx.Client, kube: client.ApiClient, namespace: str
) -> None:
    writer = _token(kube, namespace, ["create", "list", "get", "patch"])
    reader, reader_binding = _api_key(kube, namespace, ["get"])
    recording_id = api.post(_url(), json={"meeting_id": MEETING}, headers=_as(writer)).json()[
        "data"
    ]["id"]

    _ok(api.get(_url(f"/{recording_id}"), headers=_as(reader)), "GetRecordingResponse")
    assert "may not create" in _error(
        api.post(_url(), json={"meeting_id": MEETING}, headers=_as(reader)), 403
    )
    assert "may not patch" in _error(
        api.put(_url(f"/{recording_id}"), json={"action": "stop"}, headers=_as(reader)), 403
    )
    assert "unauthorized" in _error(api.get(_url(f"/{recording_id}"), headers=_as("garbage")), 401)
    assert "Bearer" in _error(api.get(_url(f"/{recording_id}")), 401)

    elsewhere = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": elsewhere}})
    try:
        eventually(lambda: read(core.read_namespaced_service_account, "default", elsewhere))
        stranger = _token(kube, elsewhere, ["create", "list", "get", "patch"])
        _error(api.get(_url(f"/{recording_id}"), headers=_as(stranger)), 403)
    finally:
        core.delete_namespace(elsewhere)

    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.delete_namespaced_role_binding(reader_binding, namespace)
    _error(api.get(_url(f"/{recording_id}"), headers=_as(reader)), 403)  # revoked at once


def test_unsupported_fields_are_refused_by_name(
    api: httpx.Client, kube: client.ApiClient, namespace: str
) -> None:
    token = _token(kube, namespace, ["create"])
    for body, field in (
        ({"rtmp_out_config": {"rtmp_url": "rtmp://x/live"}}, "rtmp_out_config"),
        ({"storage_config": {"type": "sftp"}}, "storage_config.type"),
        ({"video_config": {"watermark": {"url": "https://x/w.png"}}}, "video_config.watermark"),
    ):
        message = _error(
            api.post(_url(), json={"meeting_id": MEETING, **body}, headers=_as(token)), 400
        )
        assert message.startswith(f"{field}: ")
