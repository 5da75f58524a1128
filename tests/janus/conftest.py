"""Real Janus on 127.0.0.1, synthetic participants as processes, and the recorder's CLI."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tapedeck_dev.commands import record_command
from tapedeck_dev.janus import JanusPorts, JanusServer
from tapedeck_dev.participant import ensure_room, participant_command, participant_plan

# Not Janus' default ports, so that a developer's own Janus does not collide with the tests.
PORTS = JanusPorts(http=18088, websocket=18188, rtp_first=21000, rtp_last=21999)
ENV = {**os.environ, "TAPEDECK_ICE_HOST_ADDRESSES": "127.0.0.1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusServer]:
    server = JanusServer(tmp_path_factory.mktemp("janus"), PORTS)
    server.up()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture
def room(janus: JanusServer) -> int:
    number = random.randint(100_000, 999_999)
    asyncio.run(ensure_room(janus.http_url, number))
    return number


class Lines:
    """Collects a pipe's lines in a thread, so a test can wait for one without blocking."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))
        stream.close()  # type: ignore[attr-defined]

    def wait_for(self, needle: str, timeout: float = 30, *, nth: int = 1) -> str:
        """The `nth` line containing `needle`, waiting up to `timeout` s for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if needle in line]
            if len(found) >= nth:
                return found[nth - 1]
            time.sleep(0.05)
        raise AssertionError(f"no line with {needle!r} in {timeout}s: {self.lines[-20:]}")

    def join(self) -> None:
        self._thread.join(timeout=10)


@dataclass
class Participant:
    name: str
    colour: str
    freq: float
    proc: subprocess.Popen[str]
    out: Lines
    joined_at: float = 0.0  # time.time() when Janus accepted its media
    left_at: float | None = None

    def leave(self) -> None:
        self.left_at = time.time()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)

    def kill(self) -> None:
        self.left_at = time.time()
        self.proc.kill()
        self.proc.wait(timeout=20)


@dataclass
class Meeting:
    url: str
    room: int
    people: list[Participant] = field(default_factory=list)

    def join(
        self,
        index: int,
        *,
        sync: bool = False,
        codec: str | None = None,
        url: str | None = None,
        freq: float | None = None,
        amplitude: float | None = None,
        drop_audio: str | None = None,
        audio_loss: float | None = None,
        audio_only: bool = False,
        video_off: tuple[float, float] | None = None,
    ) -> Participant:
        """`drop_audio` ("START:SECONDS,…" after publishing) and `audio_loss` (a share)
        lose audio packets on the way to Janus."""
        name, colour, planned = participant_plan(index + 1)[index]
        freq = freq or planned
        args = participant_command(
            url or self.url,
            self.room,
            index,
            sync=sync,
            videocodec=codec,
            freq=freq,
            amplitude=amplitude,
            drop_audio=drop_audio,
            audio_loss=audio_loss,
            audio_only=audio_only,
            video_off=video_off,
        )
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV
        )
        person = Participant(name, colour, freq, proc, Lines(proc.stdout))
        person.joined_at = float(person.out.wait_for("PUBLISHED").split()[-1])
        self.people.append(person)
        return person

    def close(self) -> None:
        for person in self.people:
            if person.proc.poll() is None:
                person.proc.send_signal(signal.SIGTERM)
        for person in self.people:
            try:
                person.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                person.proc.kill()


@pytest.fixture
def meeting(janus: JanusServer, room: int) -> Iterator[Meeting]:
    m = Meeting(janus.http_url, room)
    try:
        yield m
    finally:
        m.close()


@dataclass
class Recording:
    proc: subprocess.Popen[str]
    stdout: Lines
    stderr: Lines
    out: Path | None
    started_at: float = 0.0  # time.time() of the recording's t=0

    def wait_started(self) -> float:
        line = self.stderr.wait_for('"recording started"')
        self.started_at = _log_time(line)
        return self.started_at

    def signal(self, sig: signal.Signals) -> float:
        self.proc.send_signal(sig)
        return time.time()

    def finish(self, timeout: float = 60) -> str:
        """Wait for the exit; return the `stopped:` line."""
        code = self.proc.wait(timeout=timeout)
        self.stdout.join()
        self.stderr.join()
        assert code == 0, "\n".join(self.stderr.lines[-30:])
        return self.stdout.wait_for("stopped:", timeout=1)


def _log_time(line: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(json.loads(line)["time"]).timestamp()


def start_recording(url: str, room: int, out: Path | None, *extra: str) -> Recording:
    """`tapedeck-bot record` with the composite into `out` (None: tracks only)."""
    composite = ["--out", str(out)] if out is not None else []
    proc = subprocess.Popen(
        record_command(url, room, *composite, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    return Recording(proc, Lines(proc.stdout), Lines(proc.stderr), out)
