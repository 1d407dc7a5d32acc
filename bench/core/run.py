"""Cloud-core benches: `python -m bench.core.run [--quick] [...]` (also run by `python -m bench`).

1. cold import of app.py against a bare Chalice + PynamoDB app, and the lazy-SDK check (imports.py);
2. DynamoDB calls and our own CPU per operation, against the emulator and the sandbox run as
   separate processes (operations.py).

Exit status 1 when a payment SDK (or a crypto library the bare app does without) is imported by
`import app`: that check is a rule, not a figure. Every loop is bounded; the defaults finish in
about a minute and a half on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.core.operations import Row


def _machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs, load average {load}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def format_rows(rows: list[Row]) -> str:
    header = (f"  {'operation':<42}{'N':>5}  {'DynamoDB calls/op':<38}"
              f"{'CPU ms/op median':>17}{'p90':>7}{'1st op ms':>11}")
    out = [header]
    for row in rows:
        calls = ", ".join(f"{api} {count:.2f}" for api, count in row.calls_per_op.items()) or "none"
        out.append(f"  {row.operation:<42}{row.n:>5}  {calls:<38}{row.median_ms:>17.2f}{row.p90_ms:>7.2f}"
                   f"{row.first_ms:>11.1f}")
    thread_ms = sum(row.thread_ms_total for row in rows)
    process_ms = sum(row.process_ms_total for row in rows)
    out.append(f"  CPU over all measured calls: measuring thread {thread_ms:.0f} ms, whole process (all threads, "
               f"= getrusage RUSAGE_SELF) {process_ms:.0f} ms")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.core.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny N everywhere (smoke test)")
    parser.add_argument("--import-runs", type=int, default=10, help="fresh interpreters per target")
    parser.add_argument("--importtime-runs", type=int, default=3, help="-X importtime runs per target")
    parser.add_argument("--n", type=int, default=50, help="measured calls per operation")
    parser.add_argument("--batch", type=int, default=5, help="calls per CPU sample")
    parser.add_argument("--skip-imports", action="store_true")
    parser.add_argument("--skip-ops", action="store_true")
    parser.add_argument("--no-sandbox", action="store_true", help="FakeChannels only: no sandbox process")
    args = parser.parse_args(argv)
    # Terminated (by `python -m bench`'s guard, a test's timeout): unwind, so that the finally blocks
    # stop the emulator and sandbox processes instead of leaving them behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.import_runs, args.importtime_runs, args.n, args.batch = 1, 1, 4, 2

    started = time.monotonic()
    print(f"== Cloud core benches ({_machine()})", flush=True)
    if args.quick:
        print("   --quick: a smoke run; its figures (bytecode compiled on the way, N tiny) are not measurements")
    lazy_ok = True
    if not args.skip_imports:
        from bench.core.imports import format_import_report, run_import_bench

        report = run_import_bench(args.import_runs, args.importtime_runs, quick=args.quick)
        print(format_import_report(report), flush=True)
        lazy_ok = report.lazy_ok
    if not args.skip_ops:
        from bench.core.operations import run_ops_bench

        meter = run_ops_bench(args.n, args.batch, sandbox=not args.no_sandbox)
        print("Per operation: DynamoDB calls and our own CPU (time.thread_time of the calling thread); "
              "emulator and sandbox are separate processes", flush=True)
        print(format_rows(meter.rows), flush=True)
        built = "; then ".join(f"{count} in {cpu_ms:.0f} ms CPU ({cpu_ms / max(count, 1):.0f} ms each)"
                               for count, cpu_ms in meter.clients_built)
        print(f"  Store clients (botocore DynamoDB clients built on first use of each model, as in a cold "
              f"container): {built}. PynamoDB gives every connection its own botocore session, which loads "
              f"the service model again.", flush=True)
    print(f"== done in {time.monotonic() - started:.0f} s ({_machine()})", flush=True)
    return 0 if lazy_ok else 1


if __name__ == "__main__":
    sys.exit(main())
