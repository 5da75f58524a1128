"""The spool: an upload's bytes on local disk until the store has them.

Each upload has a directory with `upload.json` (key, content type, metadata, and the upload
id once created) and one `part-NNNNN` file per part not yet uploaded. A
part file is deleted once the store has it, so the spool holds only what is at risk, and a
bot that restarts in the same pod (an emptyDir outlives the container) finds the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

__all__ = [
    "SpoolEntry",
    "SpoolManifest",
    "part_path",
    "read_entries",
    "upload_dir",
    "write_manifest",
]

_MANIFEST = "upload.json"


@dataclass(frozen=True)
class SpoolManifest:
    key: str
    content_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    upload_id: str | None = None

    def with_upload_id(self, upload_id: str) -> SpoolManifest:
        return replace(self, upload_id=upload_id)


@dataclass(frozen=True)
class SpoolEntry:
    directory: Path
    manifest: SpoolManifest
    parts: dict[int, Path]  # part number -> file, for parts the store may not have


def upload_dir(spool: Path, key: str) -> Path:
    # Keys hold slashes and may be long; the manifest keeps the real key.
    return spool / "uploads" / hashlib.sha256(key.encode()).hexdigest()[:24]


def part_path(directory: Path, number: int) -> Path:
    return directory / f"part-{number:05d}"


def write_manifest(directory: Path, manifest: SpoolManifest) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{_MANIFEST}.tmp"
    tmp.write_text(json.dumps(asdict(manifest)))
    os.replace(tmp, directory / _MANIFEST)  # atomic: a reader never sees half a manifest


def read_entries(spool: Path) -> list[SpoolEntry]:
    """Every upload a previous process left in `spool`, with the part files still on disk."""
    entries = []
    for directory in sorted((spool / "uploads").glob("*")):
        try:
            raw = json.loads((directory / _MANIFEST).read_text())
        except (OSError, ValueError):
            continue  # a directory whose manifest never got written holds no parts either
        parts = {int(p.name.removeprefix("part-")): p for p in directory.glob("part-*")}
        entries.append(SpoolEntry(directory, SpoolManifest(**raw), parts))
    return entries
