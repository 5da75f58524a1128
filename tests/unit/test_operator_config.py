"""The operator's settings file: defaults without one, clear errors for a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapedeck_operator import cli
from tapedeck_operator.config import ConfigError, OperatorSettings, load_settings


def test_no_file_means_the_documented_defaults() -> None:
    settings = load_settings(None)
    assert settings == OperatorSettings()
    assert settings.bot.max_attempts == 5
    assert settings.bot.command == ["tapedeck-bot", "run"]
    assert settings.storage is None


def test_a_file_sets_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "operator.yaml"
    path.write_text(
        "bot: {maxAttempts: 2, gracePeriodSeconds: 60}\n"
        "storage: {type: r2, accountId: " + "a" * 32 + ", bucket: recs, secretRef: {name: r2}}\n"
    )
    settings = load_settings(path)
    assert settings.bot.max_attempts == 2
    assert settings.storage is not None
    assert settings.storage.bucket == "recs"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("bot: {maxAttempts: 0}", "bot.maxAttempts: Input should be greater than or equal to 1"),
        ("bot: {maxAtempts: 3}", "bot.maxAtempts: Extra inputs are not permitted"),
        ("storage: {bucket: recs, secretRef: {name: r2}}", "storage.accountId is required"),
        ("bot: [", "is not YAML"),
    ],
)
def test_a_bad_file_names_the_field_and_the_file(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "operator.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert says in str(caught.value)
    assert str(path) in str(caught.value)


def test_run_refuses_a_bad_file_before_touching_the_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "operator.yaml"
    path.write_text("metricsPort: -1")
    assert cli.main(["run", "--config", str(path)]) == 2
    assert "metricsPort" in capsys.readouterr().err
