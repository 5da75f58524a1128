"""Streaming uploads against SeaweedFS on loopback.

- stop to complete: a 10-minute 720p composite (the encoder's target, ~2 Mbit/s, so ~150 MB)
  is written through the uploader at 10x real time, so the stop finds what a real stop
  finds: at most the part in flight and the short last part. Baseline in the same
  invocation: the peers' way, one transfer-manager upload of the whole file after the stop.
- throughput: 256 MiB written as fast as possible, from first write to complete object;
  baseline: boto3's transfer manager uploading the same bytes from memory.
- CPU overhead: the feeding process's CPU while writing at 4x the composite's bitrate for
  30 s, to the uploader minus to a local file, divided by 4 (per recording).
"""

from __future__ import annotations

import io
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from bench.record import Figure
from tapedeck_bot.contract import UploadSettings
from tapedeck_bot.media.writer import FileWriter, OutputWriter
from tapedeck_bot.storage import Uploads
from tapedeck_bot.storage.s3 import S3Store
from tapedeck_dev.storage_servers import SeaweedFS, SeaweedPorts
from tests.storage_fixtures import seaweed_store

RUNS = 3
MIB = 1024 * 1024
PART = UploadSettings().part_size_bytes
COMPOSITE_BYTES_PER_S = (1280 * 720 * 30 // 15 + 128_000) // 8  # video target + AAC
CHUNK = 64 * 1024


def _payload(size: int) -> bytes:
    """Incompressible, like encoded media: a random MiB repeated."""
    block = random.Random(5).randbytes(MIB)
    return (block * (size // MIB + 1))[:size]


def _write(writer: OutputWriter, data: bytes, bytes_per_s: float | None) -> None:
    started = time.monotonic()
    for at in range(0, len(data), CHUNK):
        writer.write(data[at : at + CHUNK])
        if bytes_per_s:
            ahead = (at + CHUNK) / bytes_per_s - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)


def _uploads(store: S3Store, spool: Path) -> Uploads:
    return Uploads(store, spool, part_size=PART, spool_limit=1 << 40)


def _stop_to_complete(store: S3Store, spool: Path, data: bytes) -> float:
    uploads = _uploads(store, spool)
    writer = uploads.open("bench/stop.mp4", "video/mp4")
    _write(writer, data, 10 * COMPOSITE_BYTES_PER_S)
    stopped = time.monotonic()
    writer.close()
    uploads.finish()
    took = time.monotonic() - stopped
    uploads.close()
    return took


def _transfer_manager(store: S3Store, data: bytes, key: str) -> float:
    """Seconds for boto3's own multipart upload of `data`, the usual way to ship a file."""
    started = time.monotonic()
    config = TransferConfig(multipart_chunksize=PART)
    store.client.upload_fileobj(io.BytesIO(data), store.bucket, key, Config=config)
    return time.monotonic() - started


def _throughput(store: S3Store, spool: Path, data: bytes) -> float:
    uploads = _uploads(store, spool)
    started = time.monotonic()
    writer = uploads.open("bench/fast.mp4", "video/mp4")
    _write(writer, data, None)
    writer.close()
    uploads.finish()
    took = time.monotonic() - started
    uploads.close()
    return len(data) / MIB / took


def _cpu(fn: Callable[[], None]) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cpu_overhead(store: S3Store, spool: Path, data: bytes, seconds: float) -> float:
    rate = 4 * COMPOSITE_BYTES_PER_S

    def to_file() -> None:
        writer = FileWriter(spool / "local.mp4")
        _write(writer, data, rate)
        writer.close()

    def to_store() -> None:
        uploads = _uploads(store, spool)
        writer = uploads.open("bench/cpu.mp4", "video/mp4")
        _write(writer, data, rate)
        writer.close()
        uploads.finish()
        uploads.close()

    return (_cpu(to_store) - _cpu(to_file)) / seconds / 4


def run() -> list[Figure]:
    ten_minutes = _payload(600 * COMPOSITE_BYTES_PER_S)
    burst = _payload(256 * MIB)
    cpu_seconds = 30.0
    at_4x = _payload(int(cpu_seconds * 4 * COMPOSITE_BYTES_PER_S))
    with tempfile.TemporaryDirectory() as tmp:
        server = SeaweedFS(Path(tmp) / "seaweed", SeaweedPorts(first=17500))
        server.up()
        try:
            store = seaweed_store(server, "bench")
            assert isinstance(store, S3Store)
            spool = Path(tmp) / "spool"
            stops, afters, ours, theirs, cpus = [], [], [], [], []
            for _ in range(RUNS):
                stops.append(_stop_to_complete(store, spool, ten_minutes))
                afters.append(_transfer_manager(store, ten_minutes, "bench/after.mp4"))
                ours.append(_throughput(store, spool, burst))
                theirs.append(len(burst) / MIB / _transfer_manager(store, burst, "bench/tm.mp4"))
                cpus.append(_cpu_overhead(store, spool, at_4x, cpu_seconds))
            store.close()
        finally:
            server.down()
    stop, after = statistics.median(stops), statistics.median(afters)
    mine, tm = statistics.median(ours), statistics.median(theirs)

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.3f}" for v in values)

    return [
        Figure(
            "upload_stop_to_complete_s_10min",
            stop,
            "s",
            f"goal <= 3 s; {len(ten_minutes) / MIB:.0f} MiB, {PART // MIB} MiB parts (runs "
            f"{runs(stops)}); baseline, one upload after the stop: {after:.2f} s, ratio "
            f"{stop / after:.3f}",
        ),
        Figure(
            "upload_throughput_mib_s",
            mine,
            "MiB/s",
            f"256 MiB via the spool, 4 workers (runs {runs(ours)}); boto3 transfer manager "
            f"from memory: {tm:.1f} MiB/s, ratio {mine / tm:.2f}",
        ),
        Figure(
            "upload_cpu_overhead_cores",
            statistics.median(cpus),
            "cores",
            f"per 720p composite (~{COMPOSITE_BYTES_PER_S * 8 / 1e6:.1f} Mbit/s), "
            f"uploading minus writing a local file (runs {runs(cpus)})",
        ),
    ]
