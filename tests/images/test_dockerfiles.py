"""The Dockerfiles as written: hadolint, a pinned base, and what their pip install resolves
to (the operator's image must not pull the media stack, the bot's must)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tapedeck_dev.images import IMAGES, PRODUCT_IMAGES
from tests.conftest import REPO

HADOLINT = Path(sys.executable).parent / "hadolint"
MEDIA = {"aiortc", "av", "numpy"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_extras(dockerfile: Path) -> str:
    """The extras of the project that the Dockerfile's one `pip install ".[…]"` names."""
    [extras] = re.findall(r'pip install [^\n]*"\.\[([\w,-]+)\]"', dockerfile.read_text())
    return str(extras)


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_hadolint_finds_nothing(image: str, tmp_path: Path) -> None:
    # Run from an empty folder with an empty HOME, so that no hadolint config can ignore rules.
    done = subprocess.run(
        [str(HADOLINT), "--format", "json", str(REPO / IMAGES[image])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        timeout=60,
    )
    assert json.loads(done.stdout) == [], done.stdout
    assert done.returncode == 0, done.stderr


def test_hadolint_reports_an_unpinned_base(tmp_path: Path) -> None:
    """The lint gate is real: the same run flags what it should."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python\n")
    done = subprocess.run(
        [str(HADOLINT), "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        timeout=60,
    )
    assert [finding["code"] for finding in json.loads(done.stdout)] == ["DL3006"]
    assert done.returncode == 1


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_default_base_is_pinned_to_a_python_release(image: str) -> None:
    text = (REPO / IMAGES[image]).read_text()
    [base] = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-bookworm", base)
    assert re.findall(r"^FROM (.*)$", text, re.M) == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE}"]


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Image name -> the distributions pip resolves for its Dockerfile's extras, today.

    pyproject.toml alone decides the dependencies, so the resolutions run on a copy of it
    (leaving the checkout alone), both at once: each takes most of a minute.
    """
    work = tmp_path_factory.mktemp("resolve")
    project = work / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    runs: dict[str, tuple[Path, subprocess.Popen[bytes]]] = {}
    for image, dockerfile in PRODUCT_IMAGES.items():
        report, log = work / f"{image}.json", work / f"{image}.log"
        with log.open("wb") as out:
            runs[image] = (
                report,
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "install",
                        "--dry-run",
                        "--ignore-installed",
                        "--quiet",
                        "--report",
                        str(report),
                        f"{project}[{installed_extras(REPO / dockerfile)}]",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                ),
            )
    resolutions: dict[str, set[str]] = {}
    try:
        for image, (report, proc) in runs.items():
            assert proc.wait(timeout=240) == 0, (work / f"{image}.log").read_text()
            installs = json.loads(report.read_text())["install"]
            resolutions[image] = {_canonical(i["metadata"]["name"]) for i in installs}
    finally:  # a failed or timed-out resolution leaves none running
        for _, proc in runs.values():
            proc.kill()
            proc.wait()
    return resolutions


def test_the_operator_image_resolves_without_the_media_stack(
    resolved: dict[str, set[str]],
) -> None:
    assert {"tapedeck", "kopf", "kubernetes", "boto3"} <= resolved["operator"]
    assert resolved["operator"] & MEDIA == set()


def test_the_bot_image_resolves_with_the_media_stack(resolved: dict[str, set[str]]) -> None:
    assert {"tapedeck", "kubernetes", "boto3"} <= resolved["bot"]
    assert resolved["bot"] >= MEDIA
