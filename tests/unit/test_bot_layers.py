"""The bot's layers contract (.importlinter) catches an import that crosses it: a copy of the
bot with one upward import fails `lint-imports`, as `make lint` (part of `make test`) runs it."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tmp_path: Path, break_with: tuple[str, str] | None) -> subprocess.CompletedProcess[str]:
    """lint-imports with only the bot-layers contract, on a copy of the bot; `break_with`
    (module path, import line) adds one import first."""
    shutil.copytree(
        REPO / "bot_image" / "tapedeck_bot",
        tmp_path / "tapedeck_bot",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    if break_with is not None:
        module = tmp_path / break_with[0]
        module.write_text(module.read_text() + f"\n{break_with[1]}\n")
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    layers = dict(config["importlinter:contract:bot-layers"])
    config = configparser.ConfigParser()
    config["importlinter"] = {"root_package": "tapedeck_bot", "include_external_packages": "True"}
    config["importlinter:contract:bot-layers"] = layers
    with (tmp_path / "layers.ini").open("w") as out:
        config.write(out)
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tmp_path / "layers.ini"), "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_bot_as_it_is_keeps_its_layers(tmp_path: Path) -> None:
    result = _lint(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        # The placement stage reaching up into the composite it feeds.
        ("tapedeck_bot/media/placement.py", "import tapedeck_bot.composite.mixer", "media"),
        # The contract, which the operator imports, importing anything else of ours.
        ("tapedeck_bot/contract/spec.py", "import tapedeck_bot.clock", "contract"),
    ],
)
def test_an_import_across_the_layers_fails(
    tmp_path: Path, module: str, line: str, named: str
) -> None:
    result = _lint(tmp_path, (module, line))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert f"tapedeck_bot.{named}" in result.stdout
