"""What a container of the process kubelet sees of the filesystem, and the command that sets it up.

Each container runs in a mount namespace of its own (`unshare --mount`), where its pod's
`emptyDir` and `configMap` volumes, its ServiceAccount projection (token, ca.crt, namespace)
and its termination-message file are bind mounts of paths under the pod's directory on the
host. The
host sees none of these mounts; only missing mount points are created on it (`mkdir -p`,
`touch`), as empty directories and files.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "Mount",
    "MountError",
    "TokenProjection",
    "config_map_files",
    "container_mounts",
    "in_mount_namespace",
    "message_file",
    "split_tmp",
    "token_projection",
    "unsupported_volumes",
    "volume_dirs",
    "write_atomically",
]

SERVICE_ACCOUNT_DIR = "serviceaccount"  # under the pod directory
_VOLUMES_DIR = "volumes"
_DEFAULT_MESSAGE_PATH = "/dev/termination-log"
_DEFAULT_TOKEN_SECONDS = 3607  # what the ServiceAccount admission plugin writes
# The set-up runs with the container's env, whose PATH is the pod's: `command -p` finds the
# tools on the system's default path instead.
_MKDIR = "command -p mkdir -p"
_TOUCH = "command -p touch"
_MOUNT = "command -p mount --no-canonicalize"


class MountError(ValueError):
    """A container's volumeMounts cannot be set up (CreateContainerConfigError)."""


@dataclass(frozen=True)
class Mount:
    """A bind mount: `source` is relative to the pod directory, `target` a path in the container."""

    source: str
    target: str
    read_only: bool = False
    is_file: bool = False


@dataclass(frozen=True)
class TokenProjection:
    """The pod's `serviceAccountToken` projection: where the token goes and how long it lives."""

    path: str
    expiration_seconds: int
    audience: str | None


def _token_source(volume: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "serviceAccountToken" in source:
            token: Mapping[str, Any] = source["serviceAccountToken"]
            return token
    return None


def token_projection(pod: Mapping[str, Any]) -> TokenProjection | None:
    """The ServiceAccount projection the API server's admission added, or None.

    Admission adds it (`kube-api-access-*`) unless the pod or its ServiceAccount sets
    `automountServiceAccountToken: false`, so its presence is the whole decision.
    """
    for volume in pod["spec"].get("volumes") or []:
        if (source := _token_source(volume)) is not None:
            return TokenProjection(
                path=source.get("path", "token"),
                expiration_seconds=int(source.get("expirationSeconds", _DEFAULT_TOKEN_SECONDS)),
                audience=source.get("audience") or None,
            )
    return None


def volume_dirs(pod: Mapping[str, Any]) -> dict[str, str]:
    """Volume name -> its directory, relative to the pod directory, for the volumes supported.

    An `emptyDir` is a directory of its own; a projection holding the ServiceAccount token is
    the one service-account directory (token, ca.crt, namespace), as `kube-api-access-*` is.
    """
    dirs: dict[str, str] = {}
    for volume in pod["spec"].get("volumes") or []:
        if "emptyDir" in volume or "configMap" in volume:
            dirs[volume["name"]] = f"{_VOLUMES_DIR}/{volume['name']}"
        elif _token_source(volume) is not None:
            dirs[volume["name"]] = SERVICE_ACCOUNT_DIR
    return dirs


def config_map_files(volume: Mapping[str, Any], data: Mapping[str, bytes]) -> dict[str, bytes]:
    """A configMap volume's files (path -> content): every key of `data` (its `data` and
    `binaryData`), or its `items` only."""
    items = volume["configMap"].get("items")
    if not items:
        return dict(data)
    missing = [i["key"] for i in items if i["key"] not in data]
    if missing:
        raise MountError(f"volume {volume['name']}: ConfigMap has no keys {missing}")
    return {_sub_path(volume["name"], i["path"]): data[i["key"]] for i in items}


def unsupported_volumes(pod: Mapping[str, Any]) -> list[str]:
    supported = volume_dirs(pod)
    return [v["name"] for v in pod["spec"].get("volumes") or [] if v["name"] not in supported]


def _sub_path(volume: str, sub_path: str) -> str:
    parts = PurePosixPath(sub_path).parts
    if sub_path.startswith("/") or ".." in parts:
        raise MountError(f"volumeMount {volume}: subPath {sub_path!r} must be a relative path")
    return "/".join(parts)


def container_mounts(pod: Mapping[str, Any], container: Mapping[str, Any]) -> list[Mount]:
    """The container's bind mounts: its supported volumeMounts and its termination-log file.

    volumeMounts of unsupported volumes are left out (see `unsupported_volumes`).
    """
    dirs = volume_dirs(pod)
    config_maps = {v["name"] for v in pod["spec"].get("volumes") or [] if "configMap" in v}
    mounts: list[Mount] = []
    for mount in container.get("volumeMounts") or []:
        volume = dirs.get(mount["name"])
        if volume is None:
            continue
        source = volume
        if mount.get("subPath"):
            source = f"{volume}/{_sub_path(mount['name'], mount['subPath'])}"
        # As the kubelet does, a projection or a ConfigMap is always read-only.
        read_only = (
            bool(mount.get("readOnly"))
            or volume == SERVICE_ACCOUNT_DIR
            or mount["name"] in config_maps
        )
        mounts.append(Mount(source, mount["mountPath"], read_only))
    message_path = container.get("terminationMessagePath") or _DEFAULT_MESSAGE_PATH
    mounts.append(Mount(message_file(container["name"]), message_path, is_file=True))
    return mounts


# The host's /tmp may hold what the process itself runs from (a virtualenv, a checkout); an
# emptyDir mounted over it would hide them. The volume is then handed over as TMPDIR instead.
HOST_TMP = "/tmp"


def split_tmp(mounts: Sequence[Mount]) -> tuple[list[Mount], Mount | None]:
    """(the mounts to make, the emptyDir meant for /tmp, which is given as TMPDIR instead)."""
    tmp = next((m for m in mounts if m.target.rstrip("/") == HOST_TMP and not m.is_file), None)
    return [m for m in mounts if m is not tmp], tmp


def message_file(container: str) -> str:
    """The host side of a container's termination-log, relative to the pod directory."""
    return f"{container}.termination-log"


def _mount_steps(mount: Mount) -> list[str]:
    # The sources are reached through fd 3, the pod directory opened before any mount, so a
    # mount over one of its ancestors (an emptyDir at /tmp, say) cannot hide them.
    source = shlex.quote(f"/proc/self/fd/3/{mount.source}")
    target = shlex.quote(mount.target)
    if mount.is_file:
        parent = shlex.quote(str(PurePosixPath(mount.target).parent))
        make = f"{{ [ -e {target} ] || {{ {_MKDIR} {parent} && {_TOUCH} {target}; }}; }}"
    else:  # a subPath the container has not made yet is made, as the kubelet does
        make = f"{_MKDIR} {source} {target}"
    steps = [make, f"{_MOUNT} --bind {source} {target}"]
    if mount.read_only:
        steps.append(f"{_MOUNT} -o remount,bind,ro {target}")
    return steps


def in_mount_namespace(
    mounts: Sequence[Mount], command: Sequence[str], workdir: str | None = None
) -> list[str]:
    """`command` run in a mount namespace of its own with `mounts` in place.

    Run it with the pod directory as its working directory. `sh` execs the command, so the
    process started is the command itself: its PID is the container's.
    """
    # Parents before children, as a container runtime mounts them.
    ordered = sorted(mounts, key=lambda m: len(PurePosixPath(m.target).parts))
    steps = ["exec 3<."]
    for mount in ordered:
        steps += _mount_steps(mount)
    steps.append("exec 3<&-")
    if workdir:
        steps.append(f"{_MKDIR} {shlex.quote(workdir)} && cd {shlex.quote(workdir)}")
    script = " && ".join([*steps, 'exec "$@"'])
    unshare = ["unshare", "--mount", "--propagation", "private", "--"]
    return [*unshare, "/bin/sh", "-c", script, "sh", *command]


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` in one rename, so a process never reads half a token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)
