"""tapedeck-api against the real API server: RealtimeKit's endpoints read and write
Recordings, every body is RealtimeKit's, and Kubernetes RBAC decides who may do what (service
account tokens with Roles as API keys). The operator is not running here: the test writes the
status it would write."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from tapedeck_bot.contract import GROUP, PLURAL, VERSION
from tapedeck_dev.api_server import ServedApi
from tapedeck_operator.api.settings import ApiSettings
from tests.api.conftest import APP, api_key, api_token, bearer, error, ok, url
from tests.kube import read
from tests.realtimekit_api import detail_fields, recording_fields, validate
from tests.waiting import eventually

MEETING = "0b7f1c2d-3e4f-4b9a-9f4e-6f2c3c4e2d52"


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
    served = ServedApi(settings, kube)
    try:
        yield served.http
    finally:
        served.close()


def test_a_recording_through_the_api_is_a_recording_in_kubernetes(
    api: httpx.Client, kube: client.ApiClient, namespace: str
) -> None:
    token = api_token(kube, namespace, ["create", "list", "get", "patch"])
    request = {"meeting_id": MEETING, "max_seconds": 600, "file_name_prefix": "standup"}
    validate(request, "StartRecordingRequest")
    started = ok(api.post(url(), json=request, headers=bearer(token)), "GetRecordingResponse", 201)
    data = started["data"]
    assert set(data) <= detail_fields()
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

    got = ok(api.get(url(f"/{recording_id}"), headers=bearer(token)), "GetRecordingResponse")
    assert got["data"]["id"] == recording_id
    for action, state in (("pause", "Paused"), ("resume", "Recording")):
        body = {"action": action}
        validate(body, "RecordingActionRequest")
        ok(
            api.put(url(f"/{recording_id}"), json=body, headers=bearer(token)),
            "GetRecordingResponse",
        )
        spec = read(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
        assert spec is not None
        assert spec["spec"]["state"] == state

    again = api.post(url(), json={"meeting_id": MEETING}, headers=bearer(token))
    assert recording_id in error(again, 409)  # names the active recording
    active = ok(
        api.get(url(f"/active-recording/{MEETING}"), headers=bearer(token)),
        "ActiveRecordingResponse",
    )
    assert active["data"]["id"] == recording_id
    listed = ok(
        api.get(url(), params={"meeting_id": MEETING, "status": "INVOKED"}, headers=bearer(token)),
        "ListRecordingsResponse",
    )
    assert [r["id"] for r in listed["data"]] == [recording_id]
    assert listed["paging"] == {"total_count": 1, "start_offset": 1, "end_offset": 1}
    none = ok(
        api.get(url(), params={"status": "UPLOADED"}, headers=bearer(token)),
        "ListRecordingsResponse",
    )
    assert none["data"] == []

    ok(
        api.put(url(f"/{recording_id}"), json={"action": "stop"}, headers=bearer(token)),
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
    done = ok(api.get(url(f"/{recording_id}"), headers=bearer(token)), "GetRecordingResponse")
    assert (done["data"]["status"], done["data"]["recording_duration"]) == ("UPLOADED", 42)
    assert done["data"]["stop_reason"] == {"reason": "API_CALL"}
    assert "no active recording" in error(
        api.get(url(f"/active-recording/{MEETING}"), headers=bearer(token)), 404
    )


def test_kubernetes_rbac_decides_who_may_do_what(
    api: httpx.Client, kube: client.ApiClient, namespace: str
) -> None:
    writer = api_token(kube, namespace, ["create", "list", "get", "patch"])
    reader, reader_binding = api_key(kube, namespace, ["get"])
    recording_id = api.post(url(), json={"meeting_id": MEETING}, headers=bearer(writer)).json()[
        "data"
    ]["id"]

    ok(api.get(url(f"/{recording_id}"), headers=bearer(reader)), "GetRecordingResponse")
    assert "may not create" in error(
        api.post(url(), json={"meeting_id": MEETING}, headers=bearer(reader)), 403
    )
    assert "may not patch" in error(
        api.put(url(f"/{recording_id}"), json={"action": "stop"}, headers=bearer(reader)), 403
    )
    assert "unauthorized" in error(api.get(url(f"/{recording_id}"), headers=bearer("garbage")), 401)
    # A Kubernetes token of the same rights, not minted for tapedeck-api, is no key.
    plain, _ = api_key(kube, namespace, ["get"], audience="https://kubernetes.default.svc")
    assert "not a valid tapedeck-api key" in error(
        api.get(url(f"/{recording_id}"), headers=bearer(plain)), 401
    )
    assert "Bearer" in error(api.get(url(f"/{recording_id}")), 401)

    elsewhere = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": elsewhere}})
    try:
        eventually(lambda: read(core.read_namespaced_service_account, "default", elsewhere))
        stranger = api_token(kube, elsewhere, ["create", "list", "get", "patch"])
        denied = error(api.get(url(f"/{recording_id}"), headers=bearer(stranger)), 403)
        assert f"{elsewhere}:caller-" in denied  # the stranger, named by Kubernetes
        assert f"may not get recordings in namespace {namespace}" in denied
    finally:
        core.delete_namespace(elsewhere)

    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.delete_namespaced_role_binding(reader_binding, namespace)
    revoked = error(api.get(url(f"/{recording_id}"), headers=bearer(reader)), 403)
    assert f"{reader_binding} may not get recordings" in revoked  # revoked at once


def test_unsupported_fields_are_refused_by_name(
    api: httpx.Client, kube: client.ApiClient, namespace: str
) -> None:
    token = api_token(kube, namespace, ["create"])
    for body, field in (
        ({"rtmp_out_config": {"rtmp_url": "rtmp://x/live"}}, "rtmp_out_config"),
        ({"storage_config": {"type": "sftp"}}, "storage_config.type"),
        ({"video_config": {"watermark": {"position": "left top"}}}, "video_config.watermark.url"),
    ):
        message = error(
            api.post(url(), json={"meeting_id": MEETING, **body}, headers=bearer(token)), 400
        )
        assert message.startswith(f"{field}: ")


def _kubectl_tapedeck(
    kubectl: list[str], kubeconfig: Path, namespace: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`kubectl tapedeck ARGS`: kubectl itself finds kubectl-tapedeck on PATH."""
    env = dict(
        os.environ,
        KUBECONFIG=str(kubeconfig),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    return subprocess.run(
        [kubectl[0], "tapedeck", "-n", namespace, *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_kubectl_tapedeck_makes_api_keys_that_rbac_limits(
    api: httpx.Client, kubectl: list[str], kubeconfig: Path, namespace: str
) -> None:
    made = _kubectl_tapedeck(
        kubectl, kubeconfig, namespace, "api-key", "reader", "--verbs", "list,get"
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert "delete rolebinding reader" in made.stderr
    assert f"/realtime/kit/{namespace}/recordings" in made.stderr  # the curl example
    ok(api.get(url(), headers=bearer(key)), "ListRecordingsResponse")
    assert "may not create" in error(
        api.post(url(), json={"meeting_id": MEETING}, headers=bearer(key)), 403
    )
    wrong = _kubectl_tapedeck(kubectl, kubeconfig, namespace, "api-key", "x", "--verbs", "delete")
    assert wrong.returncode == 1
    assert "--verbs: delete: choose from create, list, get, patch" in wrong.stderr


def test_the_openapi_document_lists_realtimekit_s_six_operations(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    base = "/accounts/{account_id}/realtime/kit/{app_id}/recordings"
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert operations == {
        ("POST", base),
        ("GET", base),
        ("GET", base + "/{recording_id}"),
        ("PUT", base + "/{recording_id}"),
        ("GET", base + "/active-recording/{meeting_id}"),
        ("POST", base + "/track"),
    }


def test_tracks_paging_filters_and_a_stopped_recording(
    api: httpx.Client, kube: client.ApiClient, namespace: str
) -> None:
    key = api_token(kube, namespace, ["create", "list", "get", "patch"])
    composite = ok(
        api.post(url(), json={"meeting_id": MEETING}, headers=bearer(key)),
        "GetRecordingResponse",
        201,
    )
    body = {"meeting_id": MEETING, "user_ids": ["alice"]}
    validate(body, "StartTrackRecordingRequest")
    # Track recordings run beside the meeting's composite.
    tracks = ok(
        api.post(url("/track"), json=body, headers=bearer(key)), "StartTrackRecordingResponse", 201
    )
    assert set(tracks["data"]["recording"]) <= recording_fields()

    pages = [
        ok(
            api.get(url(), params={"per_page": 1, "page_no": n}, headers=bearer(key)),
            "ListRecordingsResponse",
        )
        for n in (1, 2)
    ]
    assert {p["data"][0]["id"] for p in pages} == {
        composite["data"]["id"],
        tracks["data"]["recording"]["id"],
    }
    assert [p["paging"] for p in pages] == [
        {"total_count": 2, "start_offset": 1, "end_offset": 1},
        {"total_count": 2, "start_offset": 2, "end_offset": 2},
    ]
    beyond = ok(
        api.get(url(), params={"page_no": 5}, headers=bearer(key)), "ListRecordingsResponse"
    )
    assert beyond["paging"] == {"total_count": 2, "start_offset": 0, "end_offset": 0}
    assert error(api.get(url(), params={"search": "x"}, headers=bearer(key)), 400).startswith(
        "search: "
    )
    assert error(api.get(url(), params={"status": "DONE"}, headers=bearer(key)), 400).startswith(
        "status: "
    )

    recording_id = composite["data"]["id"]
    ok(
        api.put(url(f"/{recording_id}"), json={"action": "stop"}, headers=bearer(key)),
        "GetRecordingResponse",
    )
    assert "is stopped" in error(
        api.put(url(f"/{recording_id}"), json={"action": "resume"}, headers=bearer(key)), 409
    )
    assert "not found" in error(api.get(url(f"/{uuid.uuid4()}"), headers=bearer(key)), 404)
