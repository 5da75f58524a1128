"""Record benchmark figures: results.json by name, RESULTS.md by date and machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    note: str = ""


def machine() -> str:
    cpu = "unknown cpu"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    return f"{platform.node()} ({os.cpu_count()} cores, {cpu})"


def record(figures: list[Figure], title: str) -> None:
    today = dt.date.today().isoformat()
    path = HERE / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for f in figures:
        results[f.name] = {"value": round(f.value, 4), "unit": f.unit, "date": today}
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    lines = [
        f"\n## {title}: {today}, {machine()}\n",
        "| name | median | unit | note |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{f.name}` | {f.value:.3f} | {f.unit} | {f.note} |" for f in figures]
    with (HERE / "RESULTS.md").open("a") as out:
        out.write("\n".join(lines) + "\n")
