"""Run the recorder (`tapedeck-bot record`) as its own process against real Janus and
synthetic participants, sampling its CPU (user+sys) and RSS from /proc once a second."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tapedeck_dev.commands import record_command
from tapedeck_dev.janus import JanusPorts, JanusServer
from tapedeck_dev.participant import ensure_room, participant_command

WARMUP_S = 10.0
MEASURE_S = 30.0
PORTS = JanusPorts(http=19088, websocket=19188, rtp_first=22000, rtp_last=22999)
ENV = {**os.environ, "TAPEDECK_ICE_HOST_ADDRESSES": "127.0.0.1"}
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the recorder started
    cpu_s: float
    rss_mb: float


def _read(pid: int, started: float) -> Sample:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return Sample(time.monotonic() - started, cpu, rss_kb / 1024)


def start_participants(url: str, room: int, count: int) -> list[subprocess.Popen[str]]:
    procs = []
    for index in range(count):
        proc = subprocess.Popen(
            participant_command(url, room, index, videocodec="vp8"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=ENV,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("PUBLISHED"), f"participant {index} is silent"
        procs.append(proc)
    return procs


def record(
    janus: JanusServer,
    count: int,
    recorder_args: list[str],
    seconds: float,
    env: dict[str, str] | None = None,
) -> list[Sample]:
    """Samples of a recorder recording `count` 640x360@30 VP8 participants for `seconds`;
    `recorder_args` may use `{tmp}` for a scratch directory; `env` is the recorder's (default:
    today's code)."""
    room = random.randint(100_000, 999_999)
    asyncio.run(ensure_room(janus.http_url, room))
    people = start_participants(janus.http_url, room, count)
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp:
        recorder = subprocess.Popen(
            record_command(
                janus.http_url,
                room,
                "--seconds",
                str(seconds),
                *(a.format(tmp=tmp) for a in recorder_args),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env or ENV,
        )
        started = time.monotonic()
        try:
            while recorder.poll() is None:
                samples.append(_read(recorder.pid, started))
                time.sleep(1.0)
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass  # it exited between poll() and the read
        finally:
            recorder.wait()
            for person in people:
                person.send_signal(signal.SIGTERM)
            for person in people:
                person.wait()
    return samples


def cores(samples: list[Sample]) -> float:
    """CPU-seconds per second over the measurement window after the warm-up."""
    window = [s for s in samples if WARMUP_S <= s.at <= WARMUP_S + MEASURE_S]
    return (window[-1].cpu_s - window[0].cpu_s) / (window[-1].at - window[0].at)


def janus_server(root: Path) -> JanusServer:
    server = JanusServer(root, PORTS)
    server.up()
    return server
