"""The Recording CRD on a real API server: defaults, validation, status, printer columns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tapedeck_bot.contract import RecordingSpec
from tests.kube import Recordings
from tests.recordings import INVALID, Invalid, recording

pytestmark = pytest.mark.usefixtures("crd")
REPO = Path(__file__).resolve().parents[2]


def _apply(
    kubectl: list[str], namespace: str, manifest: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kubectl, "apply", "-n", namespace, "-f", "-"],
        input=yaml.safe_dump(manifest),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _get(kubectl: list[str], namespace: str, name: str) -> dict[str, Any]:
    out = subprocess.run(
        [*kubectl, "get", "recording", name, "-n", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    obj: dict[str, Any] = json.loads(out)
    return obj


def test_valid_recording_is_stored_with_defaults(kubectl: list[str], namespace: str) -> None:
    manifest = recording()
    applied = _apply(kubectl, namespace, manifest)
    assert applied.returncode == 0, applied.stderr

    stored = _get(kubectl, namespace, "standup")["spec"]
    assert stored["state"] == "Recording"
    assert stored["maxSeconds"] == 86400
    assert stored["idleTimeoutSeconds"] == 60
    assert stored["composite"]["video"] == {
        "codec": "H264",
        "width": 1280,
        "height": 720,
        "fps": 30,
        "layout": "grid",
    }
    assert stored["tracks"] == {"enabled": False, "userIds": [], "mediaKind": "audio"}
    # The API server and the models fill exactly the same defaults: the CRD cannot drift.
    assert stored == RecordingSpec.model_validate(manifest["spec"]).to_wire()


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_recording_is_rejected_naming_the_field(
    kubectl: list[str], namespace: str, case: Invalid
) -> None:
    applied = _apply(kubectl, namespace, recording(**case.spec))
    assert applied.returncode != 0, f"accepted: {case.spec}"
    assert case.field in applied.stderr, applied.stderr
    assert case.says in applied.stderr, applied.stderr


def _update_rejected(
    kubectl: list[str], namespace: str, before: dict[str, Any], after: dict[str, Any]
) -> str:
    first = _apply(kubectl, namespace, recording(**before))
    assert first.returncode == 0, first.stderr
    second = _apply(kubectl, namespace, recording(**after))
    assert second.returncode != 0, "update accepted"
    return second.stderr


def test_meeting_is_immutable(kubectl: list[str], namespace: str) -> None:
    base = recording()["spec"]
    moved = {**base, "meeting": {**base["meeting"], "id": "another-meeting"}}
    stderr = _update_rejected(kubectl, namespace, base, moved)
    assert "spec.meeting" in stderr
    assert "immutable" in stderr


def test_stopped_is_final(kubectl: list[str], namespace: str) -> None:
    base = recording()["spec"]
    stderr = _update_rejected(
        kubectl, namespace, {**base, "state": "Stopped"}, {**base, "state": "Recording"}
    )
    assert "spec.state" in stderr
    assert "cannot leave Stopped" in stderr


def test_pause_and_resume_are_allowed(kubectl: list[str], namespace: str) -> None:
    base = recording()["spec"]
    for state in ("Paused", "Recording", "Stopped"):
        applied = _apply(kubectl, namespace, recording(**{**base, "state": state}))
        assert applied.returncode == 0, applied.stderr


def test_status_only_changes_through_the_status_subresource(
    kube: client.ApiClient, namespace: str
) -> None:
    recordings = Recordings(kube, namespace)
    recordings.create(recording())
    status = {
        "status": {
            "phase": "RECORDING",
            "startedAt": "2026-11-26T10:00:00Z",
            "history": [{"phase": "RECORDING", "at": "2026-11-26T10:00:00Z"}],
        }
    }
    recordings.patch_status("standup", status)
    assert recordings.get("standup")["status"]["phase"] == "RECORDING"

    # A plain update carrying a status is accepted, but the status part is ignored.
    recordings.patch(
        "standup", {"status": {"phase": "UPLOADED"}, "metadata": {"labels": {"touched": "yes"}}}
    )
    stored = recordings.get("standup")
    assert stored["metadata"]["labels"] == {"touched": "yes"}
    assert stored["status"]["phase"] == "RECORDING"


def test_status_schema_refuses_unknown_phase(kube: client.ApiClient, namespace: str) -> None:
    recordings = Recordings(kube, namespace)
    recordings.create(recording())
    with pytest.raises(ApiException, match=r"status.phase.*Unsupported value"):
        recordings.patch_status("standup", {"status": {"phase": "DONE"}})


def test_kubectl_shows_printer_columns_short_name_and_category(
    kube: client.ApiClient, kubectl: list[str], namespace: str
) -> None:
    recordings = Recordings(kube, namespace)
    recordings.create(recording())
    recordings.patch_status("standup", {"status": {"phase": "RECORDING", "durationSeconds": 42.5}})
    for resource in ("rec", "tapedeck"):
        out = subprocess.run(
            [*kubectl, "get", resource, "-n", namespace],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        header, row = out.splitlines()[:2]
        assert header.split()[:5] == ["NAME", "MEETING", "PHASE", "DURATION", "AGE"], header
        name, *columns = row.split()
        assert name.endswith("standup"), row  # `get tapedeck` prefixes the resource
        assert columns[:3] == ["standup-2026-11-26", "RECORDING", "42.5"], row


@pytest.mark.parametrize(
    "example", sorted((REPO / "examples").glob("recording*.yaml")), ids=lambda p: p.name
)
def test_examples_are_accepted_by_the_api_server(
    kubectl: list[str], namespace: str, example: Path
) -> None:
    applied = subprocess.run(
        [*kubectl, "apply", "--dry-run=server", "-n", namespace, "-f", str(example)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr
