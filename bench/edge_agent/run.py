"""``python -m bench.edge_agent.run``: the edge agent's benches: the codec alone, throughput, then
the crash loop.

    .venv/bin/python -m bench edge_agent                  # all three (about 5 min on 2 cores)
    .venv/bin/python -m bench.edge_agent.codec            # the protocol package's CPU per swipe
    .venv/bin/python -m bench.edge_agent.throughput       # swipes/s, added latency, memory per link
    .venv/bin/python -m bench.edge_agent.crash --iterations 100
"""

from __future__ import annotations

import sys

from bench.edge_agent import codec, crash, throughput


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = ["--quick"] if "--quick" in argv else []
    print("## edge agent: protocol path alone", flush=True)
    codec.main([])
    print("\n## edge agent: throughput", flush=True)
    first = throughput.main(quick)
    print("\n## edge agent: crash test", flush=True)
    second = crash.main(quick)
    return first or second


if __name__ == "__main__":
    sys.exit(main())
