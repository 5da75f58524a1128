"""The operator's and the bot's images, built once per run (tapedeck_dev.images)."""

from __future__ import annotations

import pytest

from tapedeck_dev.images import ImageToolsMissing, build_images
from tests.conftest import REPO


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Image name -> reference in tapedeck_dev.images' buildah storage."""
    try:
        return build_images(REPO)
    except ImageToolsMissing as exc:
        pytest.skip(f"cannot build images on this machine: {exc}")
