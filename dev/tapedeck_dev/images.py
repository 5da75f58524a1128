"""Build the operator's, the bot's and the demo's images with buildah: no Docker daemon, no
registry.

1. A base image without a registry: mmdebstrap makes a Debian rootfs (python3, its venv
   module, CA certificates) from Debian's packages. The tarball is cached under
   `~/.cache/tapedeck/images/<suite>-<recipe>/`, `<recipe>` being a hash of what goes into
   it, so a changed package list makes a new one; delete the folder for security updates.
2. buildah keeps its images in a storage of its own, `~/.cache/tapedeck/images/storage/`,
   apart from the machine's; the tarball becomes `localhost/tapedeck-base:<suite>-<recipe>`
   there once, and the Dockerfiles take it as `--build-arg BASE_IMAGE`.
3. pip inside the build reaches the index the way the host's pip does: the index and CA
   settings of `pip config list` go into a pip.conf that is bind-mounted, with the CA
   bundle, into the RUN steps. Bind mounts are not committed, and only the builder stage
   runs pip, so none of it reaches the images.
4. `buildah bud --layers` builds each Dockerfile from the repository root; an unchanged
   pyproject.toml reuses the dependency layers, an unchanged tree every layer.

chroot isolation needs no user namespaces or OCI runtime, only root; the overlay driver
keeps a layer as its changes rather than a full copy of the tree (vfs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tapedeck_dev.binaries import cache_root

__all__ = [
    "CA_IN_BUILD",
    "IMAGES",
    "PIP_CONF_IN_BUILD",
    "PRODUCT_IMAGES",
    "ImageBuildError",
    "ImageToolsMissing",
    "build_images",
    "image_config",
    "run_in_image",
]

SUITE = "bookworm"
MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Documentation and translations are dead weight in an image.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*")

# Image name -> the Dockerfile that builds it, relative to the repository root. The product's
# two, and the chart demo's (Janus, SeaweedFS and the dev harness; kind only).
PRODUCT_IMAGES = {"operator": "operator/Dockerfile", "bot": "bot_image/Dockerfile"}
IMAGES = {**PRODUCT_IMAGES, "demo": "dev/Dockerfile"}
TAG = "dev"

# pip settings that decide how the index is reached; other ones (find-links, say) name
# host paths or tune the host's runs.
_PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "cert")
_PIP_SECTIONS = ("global", "install")
# Where the build's RUN steps see them (bind mounts, never committed).
CA_IN_BUILD = "/etc/tapedeck-build/ca.crt"
PIP_CONF_IN_BUILD = "/etc/pip.conf"


class ImageToolsMissing(RuntimeError):
    """buildah or mmdebstrap is not installed and cannot be installed here."""


class ImageBuildError(RuntimeError):
    """A step of the build failed; the message names its log."""


def _images_dir() -> Path:
    return cache_root() / "images"


def _recipe() -> str:
    recipe = json.dumps([SUITE, MIRRORS, PACKAGES, DPKG_EXCLUDES])
    return f"{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def _buildah(*args: str) -> list[str]:
    storage = _images_dir()
    return [
        "buildah",
        "--root",
        str(storage / "storage"),
        "--runroot",
        str(storage / "run"),
        "--storage-driver",
        "overlay",
        *args,
    ]


def _run(argv: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise ImageBuildError(f"`{' '.join(argv[:6])} …` failed; see {log}:\n{tail}")


def _output(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise ImageBuildError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done.stdout


def _ensure_tools() -> None:
    """Install buildah and mmdebstrap from Debian's packages if they are missing."""
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ImageToolsMissing(
            f"{' and '.join(missing)} not installed, and installing needs root and apt-get "
            "(apt-get install buildah mmdebstrap)"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        done = subprocess.run(step, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ImageToolsMissing(f"`{' '.join(step)}` failed: {done.stderr.strip()}")


def _base_tarball(log: Path) -> Path:
    """The base rootfs, made by mmdebstrap on first use."""
    tarball = _images_dir() / _recipe() / "rootfs.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")  # a killed run leaves no half tarball
    _run(
        [
            "mmdebstrap",
            "--variant=apt",
            f"--include={','.join(PACKAGES)}",
            *(f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES),
            SUITE,
            str(partial),
            *MIRRORS,
        ],
        log,
    )
    partial.rename(tarball)
    return tarball


def _base_image(log: Path) -> str:
    """The base image in buildah's storage, imported from the tarball on first use."""
    image = f"localhost/tapedeck-base:{_recipe()}"
    exists = subprocess.run(
        _buildah("inspect", "--type", "image", image), capture_output=True, text=True
    )
    if exists.returncode == 0:
        return image
    tarball = _base_tarball(log)
    container = _output(_buildah("from", "scratch")).strip()
    try:
        _run(_buildah("add", container, str(tarball), "/"), log)
        _run(_buildah("commit", "--quiet", container, image), log)
    finally:
        subprocess.run(_buildah("rm", container), capture_output=True)
    return image


def _host_pip_settings() -> dict[str, str]:
    """The index and CA settings the host's pip runs with (environment over files)."""
    listed = _output([sys.executable, "-m", "pip", "config", "list"])
    from_files: dict[str, str] = {}
    from_env: dict[str, str] = {}
    for section, key, value in re.findall(r"^([\w:]*)\.([\w-]+)='(.*)'$", listed, re.M):
        if key not in _PIP_KEYS:
            continue
        if section == ":env:":
            from_env[key] = value
        elif section in _PIP_SECTIONS:
            from_files[key] = value
    return from_files | from_env


def _pip_mounts(workdir: Path) -> list[str]:
    """`--volume` arguments that give the build's pip the host's index and CA settings."""
    settings = _host_pip_settings()
    mounts: list[str] = []
    if cert := settings.pop("cert", None):
        mounts += ["--volume", f"{cert}:{CA_IN_BUILD}:ro"]
        settings["cert"] = CA_IN_BUILD
    if not settings:
        return mounts
    # A fixed path: buildah's layer cache would not tell two temporary ones apart anyway,
    # and a stable one keeps the command line the same from run to run.
    conf = workdir / "pip.conf"
    conf.write_text("[global]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    return [*mounts, "--volume", f"{conf}:{PIP_CONF_IN_BUILD}:ro"]


def build_images(repo: Path) -> dict[str, str]:
    """Build every image in IMAGES from the checkout at `repo`; name -> image reference.

    Raises ImageToolsMissing when this machine cannot run buildah, ImageBuildError when a
    step fails (the message has the end of its log).
    """
    _ensure_tools()
    workdir = _images_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "build.log"
    log.write_text("")
    # Working containers of an interrupted build hold their layers; nothing else uses
    # this storage, so they can all go.
    _run(_buildah("rm", "--all"), log)
    base = _base_image(log)
    mounts = _pip_mounts(workdir)
    built: dict[str, str] = {}
    for name, dockerfile in IMAGES.items():
        bud = _buildah(
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "--file",
            str(repo / dockerfile),
            "--build-arg",
            f"BASE_IMAGE={base}",
            *mounts,
        )
        # The builder stage is tagged too: `rmi --prune` below drops untagged images that
        # no tagged one builds on, and would take the dependency layers with them.
        _run(
            [
                *bud,
                "--target",
                "builder",
                "--tag",
                f"localhost/tapedeck-{name}-builder:{TAG}",
                str(repo),
            ],
            log,
        )
        built[name] = f"localhost/tapedeck-{name}:{TAG}"
        _run([*bud, "--tag", built[name], str(repo)], log)
    # An image rebuilt under the same tag leaves its predecessor untagged; dropping those
    # keeps the storage from growing with every change to the sources.
    _run(_buildah("rmi", "--prune"), log)
    return built


def run_in_image(image: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a fresh container of `image`, as the image's user, and remove it."""
    container = _output(_buildah("from", "--quiet", image)).strip()
    try:
        return subprocess.run(
            _buildah("run", "--isolation", "chroot", container, "--", *argv),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    finally:
        subprocess.run(_buildah("rm", container), capture_output=True)


def image_config(image: str) -> dict[str, object]:
    """The image's OCI config (User, Env, Entrypoint, Labels)."""
    inspected = _output(_buildah("inspect", "--type", "image", image))
    config: dict[str, object] = json.loads(inspected)["OCIv1"]["config"]
    return config
