"""Pion's whip-whep on 127.0.0.1 (built from the Go module proxy), each with one aiortc WHIP
publisher of a known colour and tone, and the recorder's CLI."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tapedeck_dev.cluster import free_port
from tapedeck_dev.commands import whep_record_command
from tapedeck_dev.whep_server import PionWhep
from tapedeck_dev.whip import whip_publisher_command
from tests.janus.conftest import ENV, Lines, Recording


@dataclass
class WhepStream:
    """One Pion server and the participant publishing into it."""

    server: PionWhep
    colour: str
    freq: float
    publisher: subprocess.Popen[str] | None = None
    published_at: float = 0.0  # time.time() once the publisher's ICE connected

    def publish(self) -> float:
        proc = subprocess.Popen(
            whip_publisher_command(self.server.whip_url, self.colour, self.freq, self.server.token),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=ENV,
        )
        self.publisher = proc
        self.published_at = float(Lines(proc.stdout).wait_for("PUBLISHED").split()[-1])
        return self.published_at

    def stop_publishing(self) -> None:
        if self.publisher is not None and self.publisher.poll() is None:
            self.publisher.send_signal(signal.SIGTERM)
            try:
                self.publisher.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.publisher.kill()
                self.publisher.wait()
        self.publisher = None

    def requests(self, method: str, path: str = "/whep") -> int:
        """How many `method` requests to `path` reached the example (it logs each)."""
        text = self.server.log.read_text(errors="replace")
        return text.count(f"Request to {path}, method = {method}")


StreamFactory = Callable[..., WhepStream]


@pytest.fixture
def whep_streams(tmp_path: Path) -> Iterator[StreamFactory]:
    """`make(colour, freq, token=None, publish=True)`: a server of its own, publishing."""
    made: list[WhepStream] = []

    def make(colour: str, freq: float, *, token: str | None = None) -> WhepStream:
        server = PionWhep(tmp_path / f"pion-{len(made)}", free_port(), token)
        server.up()
        stream = WhepStream(server, colour, freq)
        made.append(stream)
        stream.publish()
        return stream

    try:
        yield make
    finally:
        for stream in made:
            stream.stop_publishing()
            stream.server.down()


def start_whep_recording(
    endpoints: list[tuple[str, str]], out: Path | None, *extra: str, env: dict[str, str] = ENV
) -> Recording:
    """`tapedeck-bot record --whep USER=URL …` with the composite into `out` (None: none)."""
    composite = ["--out", str(out)] if out is not None else []
    proc = subprocess.Popen(
        whep_record_command(endpoints, *composite, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return Recording(proc, Lines(proc.stdout), Lines(proc.stderr), out)
