"""The recorder as it was before the pipeline issue, measured beside today's in one invocation.

At `BASELINE_REV`, track audio was decoded and re-encoded to Opus, and one router fed both
outputs under one lock. The bench extracts that commit's `bot_image/` into a scratch
directory and runs its recorder there, with everything else (Janus, the participants) shared.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from pathlib import Path

from bench.meeting_load import ENV

__all__ = ["BASELINE_REV", "baseline_env"]

BASELINE_REV = "ae31607"  # the last commit with decode-and-encode track audio
REPO = Path(__file__).resolve().parent.parent


def baseline_env(scratch: Path) -> dict[str, str]:
    """The recorder's environment for running the baseline's code from `scratch`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BASELINE_REV, "bot_image"],
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryFile() as tar:
        tar.write(archive)
        tar.seek(0)
        with tarfile.open(fileobj=tar) as files:
            files.extractall(scratch, filter="data")
    # PYTHONPATH comes before the editable install, so `-m tapedeck_bot.cli` is the old one.
    return {**ENV, "PYTHONPATH": str(scratch / "bot_image")}
