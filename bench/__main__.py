"""Run the benchmarks (all, or those named) and record their figures with date and machine."""

from __future__ import annotations

import sys

from bench import api, composite, control_plane, operator_scale, tracks, upload, webhooks
from bench.record import record

SUITES = {
    "control_plane": (control_plane.run, "dev control plane"),
    "composite": (composite.run, "composite recorder"),
    "overlays": (composite.overlays, "composite presentation (issue: composite presentation)"),
    "tracks": (tracks.run, "track recorder"),
    "upload": (upload.run, "streaming upload"),
    "operator": (operator_scale.run, "operator (issue: operator)"),
    "webhooks": (webhooks.run, "webhook delivery (issue: webhooks)"),
    "api": (api.run, "tapedeck-api (issue: REST API)"),
}


def main(names: list[str]) -> None:
    for name in names or list(SUITES):
        run, title = SUITES[name]
        record(run(), title)


if __name__ == "__main__":
    main(sys.argv[1:])
