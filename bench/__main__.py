"""`python -m bench [NAME ...] [--quick] [-- ARGS ...]` (`make bench` runs them all).

Each directory bench/<name>/ with a `run.py` (or a `__main__.py`) is a bench; it runs as
`python -m bench.<name>.run` (or `python -m bench.<name>`) in a process of its own, so that one
bench's imports and threads never weigh on another's figures. `--quick` and anything after `--`
are passed to each bench. The exit status is non-zero when any bench failed.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 900  # a guard only: each bench bounds its own loops


def discover() -> dict[str, str]:
    """name -> module to run with -m, in name order."""
    found = {}
    for package in sorted(p for p in HERE.iterdir() if p.is_dir() and p.name.isidentifier()):
        if (package / "run.py").is_file():
            found[package.name] = f"bench.{package.name}.run"
        elif (package / "__main__.py").is_file():
            found[package.name] = f"bench.{package.name}"
    return found


def _run(module: str, args: list[str]) -> int:
    process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=HERE.parent)
    try:
        return process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.terminate()  # SIGTERM first: a bench stops the servers it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return -1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    benches = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description="Runs the benches under bench/.")
    parser.add_argument("names", nargs="*", help=f"benches to run (default all: {', '.join(benches)})")
    parser.add_argument("--quick", action="store_true", help="tiny N: passed to each bench")
    args = parser.parse_args(own)
    unknown = [name for name in args.names if name not in benches]
    if unknown:
        parser.error(f"no bench named {', '.join(unknown)}; found {', '.join(benches)}")
    extra = (["--quick"] if args.quick else []) + passed
    failed = []
    for name in args.names or list(benches):
        print(f"\n### bench {name}: python -m {benches[name]} {' '.join(extra)}".rstrip(), flush=True)
        started = time.monotonic()
        code = _run(benches[name], extra)
        print(f"### bench {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
