"""CPU and memory of the composite recorder against real Janus and synthetic participants.

The recorder runs as its own process (`tapedeck-bot record`), so its user+sys CPU and RSS
are read from /proc without the participants' or Janus' share. CPU is measured over a window
after a warm-up; each scenario runs RUNS times and the median is kept.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.record import Figure
from tapedeck_dev.janus import JanusPorts, JanusServer
from tapedeck_dev.participant import ensure_room, participant_plan

RUNS = 3
WARMUP_S = 10.0
MEASURE_S = 30.0
SOAK_S = 600.0
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
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return Sample(time.monotonic() - started, cpu, rss_kb / 1024)


def _participants(url: str, room: int, count: int, codec: str) -> list[subprocess.Popen[str]]:
    procs = []
    for display, colour, freq in participant_plan(count):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tapedeck_dev.cli",
                "participant",
                "--janus",
                url,
                "--room",
                str(room),
                "--name",
                display,
                "--color",
                colour,
                "--freq",
                str(freq),
                "--codec",
                codec.lower(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=ENV,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("PUBLISHED"), f"{display} did not publish"
        procs.append(proc)
    return procs


def _record(janus: JanusServer, count: int, codec: str, seconds: float) -> list[Sample]:
    """Samples (every second) of a recorder recording `count` participants for `seconds`."""
    room = random.randint(100_000, 999_999)
    asyncio.run(ensure_room(janus.http_url, room))
    people = _participants(janus.http_url, room, count, "vp8")
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp:
        recorder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tapedeck_bot.cli",
                "record",
                "--janus",
                janus.http_url,
                "--room",
                str(room),
                "--out",
                f"{tmp}/out",
                "--codec",
                codec,
                "--seconds",
                str(seconds),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
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


def _cores(samples: list[Sample]) -> float:
    window = [s for s in samples if WARMUP_S <= s.at <= WARMUP_S + MEASURE_S]
    return (window[-1].cpu_s - window[0].cpu_s) / (window[-1].at - window[0].at)


def run() -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        janus = JanusServer(Path(tmp) / "janus", PORTS)
        janus.up()
        try:
            peaks: list[float] = []
            for name, count, codec in [
                ("composite_h264_720p_4up_cores", 4, "H264"),
                ("composite_vp8_720p_4up_cores", 4, "VP8"),
                ("composite_h264_720p_9up_cores", 9, "H264"),
            ]:
                runs = [_record(janus, count, codec, WARMUP_S + MEASURE_S + 2) for _ in range(RUNS)]
                cores = [_cores(r) for r in runs]
                peaks += [max(s.rss_mb for s in r) for r in runs]
                figures.append(
                    Figure(
                        name,
                        statistics.median(cores),
                        "cores",
                        f"{count} x 640x360@30 VP8 in, 1280x720@30 {codec} out; "
                        f"runs {', '.join(f'{c:.3f}' for c in cores)}",
                    )
                )
            figures.append(
                Figure(
                    "composite_peak_rss_mb",
                    max(peaks),
                    "MiB",
                    "largest VmRSS over all runs above (9-up included)",
                )
            )
            soak = _record(janus, 4, "H264", SOAK_S + 2)
            at_minute = next(s.rss_mb for s in soak if s.at >= 60)
            later = [s.rss_mb for s in soak if s.at >= 60]
            figures.append(
                Figure(
                    "composite_rss_growth_mb_10min",
                    later[-1] - at_minute,
                    "MiB",
                    f"4-up H264, VmRSS at 10 min minus at 1 min ({at_minute:.0f} "
                    f"MiB); max after 1 min {max(later):.0f} MiB",
                )
            )
        finally:
            janus.down()
    return figures
