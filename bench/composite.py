"""CPU and memory of the composite recorder (see bench/meeting_load.py for the method).

Each CPU scenario runs RUNS times; the median is kept. The synthetic participants run on the
same 2 cores as the recorder, so the 9-up figure includes contention with 9 publishers.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.meeting_load import MEASURE_S, WARMUP_S, cores, janus_server, record
from bench.record import Figure

RUNS = 3
SOAK_S = 600.0


def run() -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        janus = janus_server(Path(tmp) / "janus")
        try:
            peaks: list[float] = []
            for name, count, codec in [
                ("composite_h264_720p_4up_cores", 4, "H264"),
                ("composite_vp8_720p_4up_cores", 4, "VP8"),
                ("composite_h264_720p_9up_cores", 9, "H264"),
            ]:
                args = ["--out", "{tmp}/out", "--codec", codec]
                runs = [record(janus, count, args, WARMUP_S + MEASURE_S + 2) for _ in range(RUNS)]
                measured = [cores(r) for r in runs]
                peaks += [max(s.rss_mb for s in r) for r in runs]
                figures.append(
                    Figure(
                        name,
                        statistics.median(measured),
                        "cores",
                        f"{count} x 640x360@30 VP8 in, 1280x720@30 {codec} out; "
                        f"runs {', '.join(f'{c:.3f}' for c in measured)}",
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
            soak = record(janus, 4, ["--out", "{tmp}/out", "--codec", "H264"], SOAK_S + 2)
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
