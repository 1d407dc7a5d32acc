"""`python -m bench` finds every bench/<name>/ with a run.py (or __main__.py)."""
from __future__ import annotations

from bench.__main__ import discover


def test_the_cloud_core_bench_is_discovered_as_a_module_to_run() -> None:
    assert discover()["core"] == "bench.core.run"
