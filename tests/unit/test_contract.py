"""The contract models refuse what the API server refuses, and fill the same defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tapedeck_bot import cli as bot_cli
from tapedeck_bot.contract import CompositeSpec, RecordingSpec
from tapedeck_bot.contract.crd import render_crd
from tapedeck_bot.contract.reference import render_reference
from tests.recordings import INVALID, Invalid, recording

REPO = Path(__file__).resolve().parents[2]


def _k8s_path(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_model_refuses_what_the_api_server_refuses(case: Invalid) -> None:
    with pytest.raises(ValidationError) as caught:
        RecordingSpec.model_validate(case.spec)
    errors = caught.value.errors()
    paths = [_k8s_path(e["loc"]) for e in errors]
    assert any(p.startswith(case.field) for p in paths), paths
    if case.cel:
        assert any(case.says in e["msg"] for e in errors), errors


def test_committed_crd_is_generated_from_the_models() -> None:
    committed = (REPO / "crds" / "recording.yaml").read_text()
    assert committed == render_crd(), "run `make crds` and commit crds/recording.yaml"
    chart = (REPO / "charts" / "tapedeck" / "files" / "recording-crd.yaml").read_text()
    assert chart == committed, "run `make crds`: the chart's copy of the CRD differs"


def test_committed_api_reference_is_generated_from_the_models() -> None:
    committed = (REPO / "docs" / "recording-api.md").read_text()
    assert committed == render_reference(), "run `make crds` and commit docs/recording-api.md"


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = RecordingSpec.model_validate(recording()["spec"])
    assert spec.state == "Recording"
    assert spec.max_seconds == 86400
    assert spec.idle_timeout_seconds == 60
    assert (spec.composite.video.width, spec.composite.video.height) == (1280, 720)
    assert spec.composite.audio_codec == "AAC"
    assert not spec.tracks.enabled


def test_vp8_without_audio_codec_records_opus() -> None:
    composite = CompositeSpec.model_validate({"video": {"codec": "VP8"}})
    assert composite.audio_codec == "OPUS"


def test_unknown_field_is_refused_with_its_name() -> None:
    with pytest.raises(ValidationError, match="maxSecond"):
        RecordingSpec.model_validate({**recording()["spec"], "maxSecond": 60})


def test_importing_the_contract_loads_no_media_or_kubernetes_library() -> None:
    code = (
        "import sys, tapedeck_bot.contract\n"
        "heavy = {'av', 'aiortc', 'kopf', 'kubernetes'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "example", sorted((REPO / "examples").glob("recording*.yaml")), ids=lambda p: p.name
)
def test_examples_validate_offline(example: Path) -> None:
    assert bot_cli.main(["validate", str(example)]) == 0


def test_validate_names_the_field_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = recording(composite={"video": {"codec": "VP8"}, "audio": {"codec": "AAC"}})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(manifest))
    assert bot_cli.main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "spec.composite" in err
    assert "use OPUS or VORBIS" in err
