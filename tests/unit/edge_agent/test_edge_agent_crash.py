"""SIGKILL the agent process at random points while terminals pay online and offline; after the
restarts every payment a terminal was told OK is booked exactly once (bench/edge_agent/crash.py
runs the same loop 100+ times)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.simulator.crashloop import run_crash_loop


def test_crash_loop_a_few_times(tmp_path: Path) -> None:
    report = run_crash_loop(3, terminals=3, seed=7, workdir=tmp_path)
    assert report.ok, report.summary()
    assert report.kills == 3 and report.booked == report.acked_online + report.acked_offline > 0


@pytest.mark.long
def test_crash_loop_longer(tmp_path: Path) -> None:
    report = run_crash_loop(25, terminals=4, seed=11, workdir=tmp_path)
    assert report.ok, report.summary()
    assert report.acked_offline > 0 and report.acked_online > 0
