"""CPU of audio-only track recording, per recorded participant (method: meeting_load.py).

Today's recorder writes the sender's Opus as it arrives; the baseline (bench/baseline.py)
decoded and re-encoded it. Runs of the two alternate in one invocation, in the same room
setup, so that the machine's noise hits both alike.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.baseline import BASELINE_REV, baseline_env
from bench.meeting_load import MEASURE_S, WARMUP_S, cores, janus_server, record
from bench.record import Figure

RUNS = 3
PARTICIPANTS = 6


def run() -> list[Figure]:
    args = ["--tracks", "{tmp}", "--track-media", "audio"]
    seconds = WARMUP_S + MEASURE_S + 2
    with tempfile.TemporaryDirectory() as tmp:
        old_env = baseline_env(Path(tmp) / "baseline")
        janus = janus_server(Path(tmp) / "janus")
        try:
            now: list[float] = []
            old: list[float] = []
            for _ in range(RUNS):
                old.append(cores(record(janus, PARTICIPANTS, args, seconds, old_env)))
                now.append(cores(record(janus, PARTICIPANTS, args, seconds)))
        finally:
            janus.down()
    per_now = statistics.median(now) / PARTICIPANTS
    per_old = statistics.median(old) / PARTICIPANTS
    runs = ", ".join(f"{c:.3f}" for c in now)
    old_runs = ", ".join(f"{c:.3f}" for c in old)
    return [
        Figure(
            "tracks_audio_cores_per_participant",
            per_now,
            "cores",
            f"{PARTICIPANTS} participants, audio tracks only, Opus as sent: total "
            f"{statistics.median(now):.3f} cores (runs {runs}) / {PARTICIPANTS}",
        ),
        Figure(
            "tracks_audio_cores_per_participant_baseline",
            per_old,
            "cores",
            f"the same at {BASELINE_REV}, decoding and re-encoding: total "
            f"{statistics.median(old):.3f} cores (runs {old_runs}) / {PARTICIPANTS}",
        ),
        Figure(
            "tracks_audio_cores_ratio",
            per_now / per_old,
            "ratio",
            "today's per-participant cores / the baseline's, same invocation",
        ),
    ]
