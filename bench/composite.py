"""CPU and memory of the composite recorder (see bench/meeting_load.py for the method).

Each CPU scenario runs RUNS times; the median is kept. The synthetic participants run on the
same 2 cores as the recorder, so the 9-up figure includes contention with 9 publishers.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bench.baseline import BASELINE_REV, baseline_env
from bench.meeting_load import MEASURE_S, WARMUP_S, cores, janus_server, record
from bench.record import Figure
from tapedeck_dev.janus import JanusServer

RUNS = 3
SOAK_S = 600.0


def run() -> list[Figure]:
    figures: list[Figure] = []
    seconds = WARMUP_S + MEASURE_S + 2
    with tempfile.TemporaryDirectory() as tmp:
        old_env = baseline_env(Path(tmp) / "baseline")
        janus = janus_server(Path(tmp) / "janus")
        try:
            figures += _against_baseline(janus, old_env, seconds)
            peaks: list[float] = []
            for name, count, codec in [
                ("composite_vp8_720p_4up_cores", 4, "VP8"),
                ("composite_h264_720p_9up_cores", 9, "H264"),
            ]:
                args = ["--out", "{tmp}/out", "--codec", codec]
                runs = [record(janus, count, args, seconds) for _ in range(RUNS)]
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
                    "largest VmRSS over the VP8 4-up and H264 9-up runs",
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


def _logo(path: Path) -> Path:
    """A 240x96 watermark: a translucent white plate with opaque text, as logos are."""
    image = Image.new("RGBA", (240, 96), (255, 255, 255, 110))
    ImageDraw.Draw(image).text(
        (120, 48), "tapedeck", font=ImageFont.load_default(size=40), fill="black", anchor="mm"
    )
    image.save(path)
    return path


def overlays() -> list[Figure]:
    """4-up H264 with the presentation on (labels, the speaker's border, a watermark) and off,
    runs alternating in one invocation."""
    seconds = WARMUP_S + MEASURE_S + 2
    with tempfile.TemporaryDirectory() as tmp:
        janus = janus_server(Path(tmp) / "janus")
        logo = _logo(Path(tmp) / "logo.png")
        try:
            on: list[float] = []
            off: list[float] = []
            base = ["--out", "{tmp}/out", "--codec", "H264"]
            shown = ["--labels", "--speaker-highlight", "--watermark", str(logo)]
            for _ in range(RUNS):
                off.append(
                    cores(
                        record(janus, 4, [*base, "--no-labels", "--no-speaker-highlight"], seconds)
                    )
                )
                on.append(
                    cores(
                        record(
                            janus, 4, [*base, *shown, "--watermark-position", "right top"], seconds
                        )
                    )
                )
        finally:
            janus.down()
    scenario = "4 x 640x360@30 VP8 in, 1280x720@30 H264 out"
    ratio = statistics.median(on) / statistics.median(off)
    return [
        Figure(
            "composite_h264_720p_4up_overlays_on_cores",
            statistics.median(on),
            "cores",
            f"{scenario}, names, the speaker's border and a 240x96 watermark drawn; runs "
            f"{', '.join(f'{c:.3f}' for c in on)}",
        ),
        Figure(
            "composite_h264_720p_4up_overlays_off_cores",
            statistics.median(off),
            "cores",
            f"{scenario}, --no-labels --no-speaker-highlight; runs "
            f"{', '.join(f'{c:.3f}' for c in off)}",
        ),
        Figure(
            "composite_overlay_overhead_ratio",
            ratio,
            "ratio",
            "on / off, same invocation (labels, border and watermark)",
        ),
    ]


def _against_baseline(janus: JanusServer, old_env: dict[str, str], seconds: float) -> list[Figure]:
    """4-up H264, runs of today's recorder alternating with the baseline's."""
    args = ["--out", "{tmp}/out", "--codec", "H264"]
    now: list[float] = []
    old: list[float] = []
    for _ in range(RUNS):
        old.append(cores(record(janus, 4, args, seconds, old_env)))
        now.append(cores(record(janus, 4, args, seconds)))
    scenario = "4 x 640x360@30 VP8 in, 1280x720@30 H264 out"
    return [
        Figure(
            "composite_h264_720p_4up_cores",
            statistics.median(now),
            "cores",
            f"{scenario}; runs {', '.join(f'{c:.3f}' for c in now)}",
        ),
        Figure(
            "composite_h264_720p_4up_cores_baseline",
            statistics.median(old),
            "cores",
            f"the same at {BASELINE_REV}; runs {', '.join(f'{c:.3f}' for c in old)}",
        ),
        Figure(
            "composite_h264_720p_4up_cores_ratio",
            statistics.median(now) / statistics.median(old),
            "ratio",
            "today's cores / the baseline's, same invocation",
        ),
    ]
