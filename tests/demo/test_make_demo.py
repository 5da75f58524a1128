"""`make demo` as a newcomer runs it, from a clean clone: stopped with Ctrl-C part-way (it
tears everything down), then run again to the end (DEMO_SECONDS=20): the outputs decode and
hold the four participants' tones and colours, the contact sheet shows them, the webhooks
verified (each phase), and the README's quick-start commands work against the demo as it
holds."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tapedeck_dev.participant import participant_plan
from tests.conftest import EXTERNAL, REPO
from tests.media_probe import frames_at, nearest_colour, probe, tone_levels

pytestmark = [
    pytest.mark.skipif(bool(EXTERNAL), reason="starts its own local control plane"),
    # A fresh venv (pip) and two runs of the demo, on 2 cores that also run the publishers.
    pytest.mark.timeout(1500),
]

SECONDS = 20
PEOPLE = participant_plan(4)  # (name, colour, tone): alice, bob, carol, dave


def _readme_quick_start() -> list[str]:
    """The commands of the README's quick start, as a newcomer would paste them."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _leftovers(clone: Path) -> list[str]:
    """Processes still running from the clone (the demo's servers, pods, participants)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(clone) in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _demo(clone: Path, log: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, DEMO_SECONDS=str(SECONDS))
    for name in ("VIRTUAL_ENV", "PYTHONUNBUFFERED"):  # a newcomer's shell has neither
        env.pop(name, None)
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            ["make", "demo"], cwd=clone, env=env, text=True, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _wait_for(log: Path, text: str, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"make demo exited {proc.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} in {timeout:.0f} s:\n{log.read_text()}"
        time.sleep(1)


def _ctrl_c(proc: subprocess.Popen[str]) -> int:
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the foreground group
    return proc.wait(timeout=180)


def test_make_demo_from_a_clean_clone(tmp_path: Path) -> None:
    clone = tmp_path / "tapedeck"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)

    # 1. Ctrl-C while the recording runs: everything goes, nothing is left listening.
    first = tmp_path / "first.log"
    proc = _demo(clone, first)
    _wait_for(first, "kubectl apply -f examples/recording.yaml", proc, timeout=900)
    time.sleep(5)
    assert _ctrl_c(proc) != 0
    assert "interrupted: everything is stopped" in first.read_text()
    assert _leftovers(clone) == []
    assert _free(8088)  # Janus
    assert _free(17600)  # SeaweedFS

    # 2. A second run, to the end; it holds (as from a terminal) once it is done.
    second = tmp_path / "second.log"
    env_hold = dict(os.environ, DEMO_SECONDS=str(SECONDS))
    env_hold.pop("PYTHONUNBUFFERED", None)
    with second.open("w") as out:
        proc = subprocess.Popen(
            ["script", "-qfec", "make demo", "/dev/null"],  # a terminal: the demo holds at the end
            cwd=clone, env=env_hold, text=True, stdin=subprocess.PIPE,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _wait_for(second, "Press Ctrl-C to stop everything", proc, timeout=600)
    output = second.read_text(errors="replace")

    # The README's quick start, against the demo as it holds.
    for command in _readme_quick_start():
        if command.startswith("make "):
            continue
        done = subprocess.run(
            ["bash", "-c", f"source demo-out/env && {command}"],
            cwd=clone, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}: {done.stderr}"
    # Ctrl-C typed into the terminal: the pty turns it into SIGINT for make's process group.
    assert proc.stdin is not None
    proc.stdin.write("\x03")
    proc.stdin.flush()
    proc.wait(timeout=180)
    proc.stdin.close()
    assert "everything is stopped" in second.read_text(errors="replace")
    assert _leftovers(clone) == []

    # The webhooks arrived and verified, for each phase.
    for phase in ("INVOKED", "RECORDING", "PAUSED", "UPLOADING", "UPLOADED"):
        assert re.search(rf"recording\.statusUpdate +{phase} .*signature verified", output), phase

    # The outputs: the composite (H.264/MP4, 1280x720) and a track per participant.
    recordings = clone / "recordings"
    [composite] = sorted(recordings.glob("*_composite_*.mp4"))
    tracks = sorted(recordings.glob("*_webcam_audio_*.webm"))
    assert {name for name, _, _ in PEOPLE} <= {t.name.split("_")[1] for t in tracks}
    media = probe(composite)
    assert (media.video_codec, media.width, media.height) == ("h264", 1280, 720)
    # Paused for a few seconds of the 20: the file holds about the recorded time.
    assert SECONDS - 8 < media.video_seconds < SECONDS + 2
    levels = tone_levels(media.audio, [tone for _, _, tone in PEOPLE])
    assert min(levels.values()) > -30, levels  # all four voices in the mix
    colours: set[str] = set()
    times = [media.video_seconds * f for f in (0.3, 0.5, 0.7, 0.9)]
    for frame in frames_at(composite, times).values():
        colours |= _colours_in(frame)
    assert {colour for _, colour, _ in PEOPLE} <= colours

    # The contact sheet: 8 thumbnails of 320x180 (4 by 2, with a label under each).
    sheet = Image.open(recordings / "contact-sheet.png")
    assert sheet.format == "PNG"
    assert sheet.size == (4 * 320, 2 * (180 + 20))
    assert {colour for _, colour, _ in PEOPLE} <= _colours_in(np.asarray(sheet.convert("RGB")))


def _colours_in(image: np.ndarray, step: int = 16) -> set[str]:
    """The participant colours seen on a grid of points, saturated pixels only."""
    seen = set()
    for row in image[::step, ::step]:
        for pixel in row:
            if int(pixel.max()) - int(pixel.min()) > 80:  # skip black, grey and white
                seen.add(nearest_colour(pixel))
    return seen
