"""The images as built: their entry points run, the operator's has no media stack, neither
has the developer tools, and all run unprivileged; the demo's runs Janus, SeaweedFS and the
participants' harness."""

from __future__ import annotations

import re
import tomllib
from pathlib import PurePosixPath

import pytest

from tapedeck_dev.images import (
    CA_IN_BUILD,
    IMAGES,
    PIP_CONF_IN_BUILD,
    PRODUCT_IMAGES,
    image_config,
    run_in_image,
)
from tests.conftest import REPO

# The first test pays for the build: a cold one (base rootfs and both images) takes minutes.
pytestmark = pytest.mark.timeout(1500)

MEDIA = {"aiortc", "av", "numpy"}
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m; print(*(d.metadata['Name'] for d in m.distributions()))"
)


def _python(image: str, code: str) -> str:
    done = run_in_image(image, "python", "-c", code)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_operator_image_runs_the_operator(images: dict[str, str]) -> None:
    done = run_in_image(images["operator"], "tapedeck-operator", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: tapedeck-operator")
    # --help loads the CLI alone; `run` needs kopf, the Kubernetes client and the handlers.
    _python(
        images["operator"],
        "import kopf, kubernetes, tapedeck_operator.handlers, tapedeck_operator.aftercare",
    )


def test_the_bot_image_runs_the_bot(images: dict[str, str]) -> None:
    done = run_in_image(images["bot"], "tapedeck-bot", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"tapedeck-bot {VERSION}"
    # The pod's entry module, and the encoders the recorder opens, from the FFmpeg that the
    # av wheel bundles: the base image has no media libraries of its own.
    _python(
        images["bot"],
        "import av, tapedeck_bot.pod\n"
        "for name in ('libx264', 'libvpx', 'libopus', 'aac'): av.codec.Codec(name, 'w')",
    )


@pytest.mark.parametrize(("image", "has_media"), [("operator", False), ("bot", True)])
def test_only_the_bot_image_has_the_media_stack(
    images: dict[str, str], image: str, has_media: bool
) -> None:
    names = _python(images[image], LIST_DISTRIBUTIONS).split()
    installed = {re.sub(r"[-_.]+", "-", name).lower() for name in names}
    assert "tapedeck" in installed
    assert (installed & MEDIA) == (MEDIA if has_media else set())


@pytest.mark.parametrize("image", sorted(PRODUCT_IMAGES))
def test_the_images_carry_no_developer_tools(images: dict[str, str], image: str) -> None:
    found = _python(
        images[image],
        "import importlib.util, shutil\n"
        "print(importlib.util.find_spec('tapedeck_dev'), shutil.which('tapedeck-dev'))",
    )
    assert found.split() == ["None", "None"]


@pytest.mark.parametrize("image", sorted(PRODUCT_IMAGES))
def test_the_images_keep_none_of_the_build_time_pip_settings(
    images: dict[str, str], image: str
) -> None:
    paths = [PIP_CONF_IN_BUILD, CA_IN_BUILD, str(PurePosixPath(CA_IN_BUILD).parent)]
    found = _python(images[image], f"import os; print(*(os.path.exists(p) for p in {paths!r}))")
    assert found.split() == ["False", "False", "False"]


def test_the_demo_image_keeps_no_build_time_pip_settings_either(images: dict[str, str]) -> None:
    """The demo's final stage has a RUN step (Janus from Debian), and buildah leaves the
    mount points of the build's bind mounts behind in that layer: empty, never the contents."""
    paths = [PIP_CONF_IN_BUILD, CA_IN_BUILD]
    sizes = _python(
        images["demo"],
        f"import os; print(*(os.path.getsize(p) for p in {paths!r} if os.path.exists(p)))",
    )
    assert set(sizes.split()) <= {"0"}


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_images_run_unprivileged(images: dict[str, str], image: str) -> None:
    config = image_config(images[image])
    assert config["User"] == "65532:65532"
    if image in PRODUCT_IMAGES:
        assert config["Entrypoint"] == [f"tapedeck-{image}"]
    env = config["Env"]
    assert isinstance(env, list)
    assert {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"} <= set(env)
    assert _python(images[image], "import os; print(os.getuid(), os.getgid())").split() == [
        "65532",
        "65532",
    ]


def test_the_demo_image_runs_janus_seaweedfs_and_the_harness(images: dict[str, str]) -> None:
    for argv, says in (
        (["janus", "--help"], "Janus version: 1102"),
        (["weed", "version"], "4.48"),
        (["tapedeck-dev", "--help"], "usage: tapedeck-dev"),
    ):
        done = run_in_image(images["demo"], *argv)
        assert done.returncode == 0, done.stderr
        assert says in done.stdout + done.stderr, done.stdout
