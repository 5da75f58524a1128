"""A whole recording through tapedeck-api (RealtimeKit's REST API), with the operator, the
process kubelet, Janus and SeaweedFS: start, pause, resume, stop, list, read until UPLOADED,
download and decode; and the same Recording seen and stopped through kubectl."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tapedeck_bot.storage import ObjectStore
from tapedeck_dev.api_server import ServedApi
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.kubeclient import api_client
from tapedeck_dev.storage_servers import SeaweedFS
from tapedeck_operator.api.settings import ApiSettings
from tests.api.conftest import APP, api_token, bearer, ok, url
from tests.janus.conftest import Meeting
from tests.operator.conftest import Cluster, Operator, storage_spec
from tests.realtimekit_api import detail_fields, recording_fields, validate
from tests.storage.http import get
from tests.storage.media import playable_seconds
from tests.waiting import eventually

STANDUP, RETRO = "9b0c5a4e-0f57-4a43-9a3c-2c1f6d2b7e01", "5d7e2a10-8c3f-4f1e-b6a2-7e9d4c3b2a10"


@pytest.fixture
def served(
    cluster: Cluster,
    janus: JanusServer,
    meeting: Meeting,
    seaweed: SeaweedFS,
    bucket: ObjectStore,
    kubeconfig: Path,
) -> Iterator[httpx.Client]:
    settings = ApiSettings.model_validate(
        {
            "apps": {
                APP: {
                    "namespace": cluster.namespace,
                    "janusUrl": janus.http_url,
                    "rooms": {STANDUP: meeting.room, RETRO: meeting.room},
                    "storage": storage_spec(seaweed, bucket, cluster.namespace),
                }
            }
        }
    )
    server = ServedApi(settings, api_client(str(kubeconfig)))
    try:
        yield server.http
    finally:
        server.close()


def _until(
    api: httpx.Client,
    token: str,
    recording_id: str,
    *statuses: str,
    ready: Callable[[dict[str, Any]], Any] = lambda data: True,
) -> dict[str, Any]:
    """The recording once its status is one of `statuses` and `ready(data)` holds."""

    def reached() -> dict[str, Any] | None:
        body = ok(api.get(url(f"/{recording_id}"), headers=bearer(token)), "GetRecordingResponse")
        assert set(body["data"]) <= detail_fields()
        data: dict[str, Any] = body["data"]
        return data if data["status"] in statuses and ready(data) else None

    return eventually(reached, timeout=120, what=f"{recording_id} to reach {statuses}")


def test_a_recording_driven_through_the_api_reaches_uploaded_and_decodes(
    cluster: Cluster,
    operator: Operator,
    meeting: Meeting,
    served: httpx.Client,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    meeting.join(0)
    meeting.join(1)
    token = api_token(
        api_client(str(kubeconfig)), cluster.namespace, ["create", "list", "get", "patch"]
    )
    start = {
        "meeting_id": STANDUP,
        "file_name_prefix": "standup",
        "video_config": {"codec": "VP8", "width": 640, "height": 360},
    }
    validate(start, "StartRecordingRequest")
    created = ok(served.post(url(), json=start, headers=bearer(token)), "GetRecordingResponse", 201)
    recording_id = created["data"]["id"]
    recording = _until(served, token, recording_id, "RECORDING")
    assert recording["started_time"] is not None

    # The same Recording, through kubectl.
    (row,) = [line for line in cluster.run("get", "rec").splitlines() if line.startswith("rtk-")]
    assert "RECORDING" in row

    for action, status in (("pause", "PAUSED"), ("resume", "RECORDING")):
        time.sleep(4)  # a few seconds of each, for the file to show the cut
        body = {"action": action}
        validate(body, "RecordingActionRequest")
        ok(
            served.put(url(f"/{recording_id}"), json=body, headers=bearer(token)),
            "GetRecordingResponse",
        )
        _until(served, token, recording_id, status)
    time.sleep(4)
    ok(
        served.put(url(f"/{recording_id}"), json={"action": "stop"}, headers=bearer(token)),
        "GetRecordingResponse",
    )
    done = _until(served, token, recording_id, "UPLOADED", "ERRORED")
    assert done["status"] == "UPLOADED", done
    assert done["stop_reason"] == {"reason": "API_CALL"}
    assert done["output_file_name"].startswith("standup")
    assert done["output_file_name"].endswith(".webm")
    assert done["file_size"] > 0
    assert done["recording_duration"] >= 7
    # The operator presigns the download once the bot has reported UPLOADED.
    done = _until(served, token, recording_id, "UPLOADED", ready=lambda d: d["download_url"])
    path = tmp_path / done["output_file_name"]
    path.write_bytes(get(done["download_url"]))
    video_s, audio_s = playable_seconds(path)
    assert abs(video_s - done["recording_duration"]) < 2.5  # the pause is cut
    assert audio_s > 5

    listed = ok(
        served.get(
            url(),
            params={"meeting_id": STANDUP, "status": "UPLOADED"},
            headers=bearer(token),
        ),
        "ListRecordingsResponse",
    )
    assert [r["id"] for r in listed["data"]] == [recording_id]
    assert set(listed["data"][0]) <= recording_fields()

    # Started through the API, stopped through kubectl: the API reads the outcome.
    second = ok(
        served.post(
            url(),
            json={
                "meeting_id": RETRO,
                "video_config": {"codec": "VP8", "width": 640, "height": 360},
            },
            headers=bearer(token),
        ),
        "GetRecordingResponse",
        201,
    )["data"]["id"]
    _until(served, token, second, "RECORDING")
    recordings = json.loads(cluster.run("get", "rec", "-o", "json"))["items"]
    name = next(r["metadata"]["name"] for r in recordings if r["metadata"]["uid"] == second)
    time.sleep(3)
    cluster.set_state(name, "Stopped")
    assert _until(served, token, second, "UPLOADED", "ERRORED")["status"] == "UPLOADED"
