"""CPU of audio-only track recording, per recorded participant (method: meeting_load.py).

The baseline in the same invocation is the same recorder in the same room recording nothing
but one participant's track, so the per-participant figure is the slope between 1 and N.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.meeting_load import MEASURE_S, WARMUP_S, cores, janus_server, record
from bench.record import Figure

RUNS = 3
PARTICIPANTS = 6


def run() -> list[Figure]:
    args = ["--tracks", "{tmp}", "--track-media", "audio"]
    with tempfile.TemporaryDirectory() as tmp:
        janus = janus_server(Path(tmp) / "janus")
        try:
            one = [cores(record(janus, 1, args, WARMUP_S + MEASURE_S + 2)) for _ in range(RUNS)]
            many = [
                cores(record(janus, PARTICIPANTS, args, WARMUP_S + MEASURE_S + 2))
                for _ in range(RUNS)
            ]
        finally:
            janus.down()
    many_median = statistics.median(many)
    per_participant = many_median / PARTICIPANTS
    slope = (many_median - statistics.median(one)) / (PARTICIPANTS - 1)
    return [
        Figure(
            "tracks_audio_cores_per_participant",
            per_participant,
            "cores",
            f"{PARTICIPANTS} participants, audio tracks only: total {many_median:.3f} cores "
            f"(runs {', '.join(f'{c:.3f}' for c in many)}) / {PARTICIPANTS}; the marginal "
            f"cost of one more participant is {slope:.3f} (1-participant runs "
            f"{', '.join(f'{c:.3f}' for c in one)})",
        ),
    ]
