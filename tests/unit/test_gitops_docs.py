"""docs/gitops.md shows the Argo CD health script inline; it must be the tested file's code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _code(lua: str) -> list[str]:
    lines = (line.strip() for line in lua.splitlines())
    return [line for line in lines if line and not line.startswith("--")]


def test_the_inline_argocd_health_check_is_the_tested_script() -> None:
    page = (REPO / "docs/gitops.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", page, re.DOTALL)
    assert block is not None
    config_map = yaml.safe_load(block.group(1))
    inline = config_map["data"]["resource.customizations.health.tapedeck.dev_Recording"]
    script = (REPO / "docs/gitops/recording-health.lua").read_text()
    assert _code(inline) == _code(script)
