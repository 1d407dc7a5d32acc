"""``python -m bench.edge_agent.crash [--iterations 100]``: the crash test, many times.

The agent is killed with SIGKILL at random points while terminals pay online, offline (cloud down)
and with answers lost on the way back (the cloud books, the agent never hears); after the restarts
every payment a terminal was told OK must be booked in the cloud exactly once, with its card and
amount, and every card's balance must be exactly right. See edge_agent/simulator/crashloop.py.
"""

from __future__ import annotations

import argparse
import sys
import time

from edge_agent.simulator.crashloop import run_crash_loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--terminals", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--quick", action="store_true", help="3 iterations: a smoke run")
    args = parser.parse_args(argv)
    iterations = 3 if args.quick else args.iterations
    started = time.monotonic()
    report = run_crash_loop(iterations, terminals=args.terminals, seed=args.seed)
    print(f"crash test: {report.summary()}")
    for name in ("missing", "wrong", "unexpected"):
        if getattr(report, name):
            print(f"  {name}: {getattr(report, name)[:20]}")
    if report.balance_errors:
        print(f"  balances (found, expected): {report.balance_errors}")
    print(f"crash test {'PASS' if report.ok else 'FAIL'} in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
