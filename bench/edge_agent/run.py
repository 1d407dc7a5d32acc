"""``python -m bench.edge_agent.run``: the edge agent's benches, throughput then the crash loop.

    .venv/bin/python -m bench edge_agent                  # both (about 5 min on 2 cores)
    .venv/bin/python -m bench.edge_agent.throughput       # swipes/s, added latency, memory per link
    .venv/bin/python -m bench.edge_agent.crash --iterations 100
"""

from __future__ import annotations

import sys

from bench.edge_agent import crash, throughput


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = ["--quick"] if "--quick" in argv else []
    print("## edge agent: throughput", flush=True)
    first = throughput.main(quick)
    print("\n## edge agent: crash test", flush=True)
    second = crash.main(quick)
    return first or second


if __name__ == "__main__":
    sys.exit(main())
