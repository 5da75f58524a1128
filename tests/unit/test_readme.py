"""The README's figures come from bench/results.json, and its links resolve."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO


def test_the_benchmark_table_quotes_results_json() -> None:
    readme = (REPO / "README.md").read_text()
    results = json.loads((REPO / "bench/results.json").read_text())
    section = readme.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([\d.]+) ", section, re.M)
    assert len(rows) >= 8
    for name, quoted in rows:
        assert name in results, name
        decimals = len(quoted.split(".")[1]) if "." in quoted else 0
        assert float(quoted) == round(results[name]["value"], decimals), name


def test_the_readmes_local_links_exist() -> None:
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(((?:docs|examples|bench|charts)/[^)#]+)", readme):
        assert (REPO / target).exists(), target
