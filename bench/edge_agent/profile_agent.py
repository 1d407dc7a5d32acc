"""Where the agent's event loop spends its time: cProfile of the agent under the throughput load.

    .venv/bin/python -m bench.edge_agent.profile_agent                  # 100 terminals back to back
    .venv/bin/python -m bench.edge_agent.profile_agent --terminals 100 --interval 1 --ops 10   # paced

The same stack as :mod:`bench.edge_agent.throughput` (stub cloud and agent on 127.0.0.1, SQLite
``synchronous=FULL`` in a temporary directory), but the agent runs under ``python -m cProfile``.
cProfile sees the main thread only: that is the event loop, everything per swipe except the SQLite
writer thread. The agent is stopped with SIGTERM (a clean stop) so that the profile gets written;
the top functions by own time and by cumulative time are printed, the raw profile is kept with
``--out`` for ``python -m pstats``.

Profiling slows Python calls down several times, so read shares, not absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import pstats
import sys
import tempfile
from pathlib import Path

from .throughput import AGENT_ID, SECRET, Side, free_port, measure, start, wait_keys


def profile(terminals: int, ops: int, interval_s: float, out: Path, top: int) -> str:
    started: list[Side] = []
    with tempfile.TemporaryDirectory(prefix="edge-profile-") as tmp:
        workdir = Path(tmp)
        try:
            cloud_port, agent_port = free_port(), free_port()
            start(["-m", "edge_agent.simulator.stub_cloud", "--port", str(cloud_port), "--agent-id", AGENT_ID,
                   "--secret", SECRET, "--terminals", str(terminals), "--balance", str(10**12)], cloud_port,
                  "cloud", started)
            config = {"agent_id": AGENT_ID, "agent_secret": SECRET, "cloud_url": f"http://127.0.0.1:{cloud_port}",
                      "listen_host": "127.0.0.1", "listen_port": agent_port, "data_dir": str(workdir / "data"),
                      "max_connections": 5000, "events_poll_s": 1.0, "status_report_s": 30.0}
            (workdir / "agent.json").write_text(json.dumps(config))
            agent = start(["-m", "cProfile", "-o", str(out), "-m", "edge_agent", "--config",
                           str(workdir / "agent.json"), "--log-level", "WARNING"], agent_port, "agent", started)
            asyncio.run(wait_keys(agent.port))
            measure(agent, min(10, terminals), 20, 1)  # warm-up, as in the throughput bench
            result, cpu = measure(agent, terminals, ops, 1_000_000, interval_s)
            summary = (f"{terminals} terminals, {ops} swipes each, interval {interval_s:g} s: "
                       f"{result.rate:.0f} swipes/s, {len(result.latencies_s)} answered, {result.failures} "
                       f"unanswered, agent CPU {cpu * 1e6 / max(1, len(result.latencies_s)):.0f} us/swipe "
                       f"(inflated by cProfile)")
        finally:
            for side in reversed(started):
                side.stop()
    text = io.StringIO()
    stats = pstats.Stats(str(out), stream=text)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return summary + "\n" + text.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=100)
    parser.add_argument("--ops", type=int, default=30, help="swipes per terminal")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between a terminal's swipes")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "edge-agent.prof")
    args = parser.parse_args(argv)
    print(profile(args.terminals, args.ops, args.interval, args.out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
