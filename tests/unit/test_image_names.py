"""The image names and tags agree everywhere they are written: the Makefile's build and kind
targets, the chart's values and appVersion, the operator's default bot image and the
distribution's version. The kind path cannot run here (no Docker), so this keeps it honest."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib

import yaml

from tapedeck_operator.config import BotSettings
from tests.conftest import REPO


def _kind_up_commands() -> list[list[str]]:
    """`make -n kind-up`: the commands it would run, with every variable expanded."""
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "kind-up"],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [shlex.split(line) for line in out.replace("\\\n", " ").splitlines() if line.strip()]


def _option(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == flag]


def test_the_images_built_loaded_and_installed_are_the_charts_defaults() -> None:
    commands = _kind_up_commands()
    built = {c[c.index("-f") + 1]: c[c.index("-t") + 1] for c in commands if "build" in c[:2]}
    assert set(built) == {"operator/Dockerfile", "bot_image/Dockerfile", "dev/Dockerfile"}
    [save] = [c for c in commands if "save" in c[:2]]
    assert set(save[2 : save.index("-o")]) == set(built.values())
    [load] = [c for c in commands if c[1:3] == ["load", "image-archive"]]
    assert load[3] == save[save.index("-o") + 1]

    chart = yaml.safe_load((REPO / "charts/tapedeck/Chart.yaml").read_text())
    values = yaml.safe_load((REPO / "charts/tapedeck/values.yaml").read_text())
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version
    operator = values["operator"]["image"]
    operator_image = f"{operator['repository']}:{operator['tag'] or chart['appVersion']}"
    assert built["operator/Dockerfile"] == operator_image
    assert built["bot_image/Dockerfile"] == values["bot"]["image"] == BotSettings().image
    assert built["dev/Dockerfile"] == values["demo"]["image"]
    assert all(image.endswith(f":{version}") for image in built.values())

    [install] = [c for c in commands if c[1:3] == ["upgrade", "--install"]]
    sets = dict(s.split("=", 1) for s in _option(install, "--set"))
    assert f"{sets['operator.image.repository']}:{sets['operator.image.tag']}" == operator_image
    assert sets["bot.image"] == built["bot_image/Dockerfile"]
    assert sets["demo.image"] == built["dev/Dockerfile"]
    assert sets["demo.enabled"] == "true"


def test_the_kind_targets_name_the_cluster_of_kind_config() -> None:
    cluster = yaml.safe_load((REPO / "kind-config.yaml").read_text())["name"]
    commands = _kind_up_commands()
    [create] = [c for c in commands if "create" in c and "cluster" in c]
    assert create[create.index("--config") + 1] == "kind-config.yaml"
    [load] = [c for c in commands if c[1:3] == ["load", "image-archive"]]
    assert _option(load, "--name") == [cluster]
    down = subprocess.run(
        ["make", "-n", "--no-print-directory", "kind-down"],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert re.search(rf"delete cluster --name {cluster}$", down.strip())
    # Everything after the cluster exists goes to its context, never to the current one.
    context = f"kind-{cluster}"
    kubectl = [c for c in commands if c[0] == "kubectl"]
    assert kubectl
    assert all(c[1:3] == ["--context", context] for c in kubectl)
    [helm] = [c for c in commands if c[1:3] == ["upgrade", "--install"]]
    assert _option(helm, "--kube-context") == [context]
