"""Swipes per second through the edge agent, added latency, memory per idle connection.

Processes, all on 127.0.0.1: the stub cloud (``edge_agent.simulator.stub_cloud``), the agent
(``python -m edge_agent``, its SQLite in a temporary directory, ``synchronous=FULL`` as in production)
and, as the yardstick, a bare asyncio server that only decodes frames and answers at once
(``bare_server.py``). The terminals are simulated in this process (``edge_agent.simulator.load``):
N terminals log in, then each swipes M times, one swipe at a time as a terminal does.

For N in 1, 100, 1000 it prints, for the agent and for the bare server in the same run: swipes/s,
round-trip p50/p99, and the agent's CPU per swipe (user + system time of the agent process from
/proc, so the figure does not depend on how the 2 cores are shared with the stub and the load
generator); "added" is the agent's round trip minus the bare server's at the same percentile.
Memory per idle connection: RSS of the process before and after 1000 terminals connect and log in.

A lone swipe's "added" holds a round trip to the stub cloud and a synced commit of the answer
(the answer is on disk before the terminal sees it). After each steady-load level the bench does
those two from this process, one at a time at the same rate, the commit inline on the agent's disk
(no thread hand-off), and prints their p50/p99 apart and in sequence: the floor of "added" on this
machine at that moment, whatever the agent's own code costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edge_agent import event_loop, store
from edge_agent.cloud import CloudClient
from edge_agent.config import AgentConfig
from edge_agent.protocol import Command
from edge_agent.simulator.client import TerminalClient
from edge_agent.simulator.load import LoadResult, percentile, run_load

ROOT = Path(__file__).resolve().parents[2]
AGENT_ID, SECRET = "E-DEMO", "demo-edge-secret"
CARDS = [str(10000000 + n) for n in range(1, 6)]
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def wait_listening(port: int, timeout: float = 30.0) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Side:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(args: list[str], port: int, name: str, started: list[Side]) -> Side:
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    side = Side(name, process, port)
    started.append(side)
    wait_listening(port)
    return side


def start_stack(workdir: Path, terminals: int, started: list[Side], loop: str = "auto",
                extra: dict[str, object] | None = None) -> tuple[Side, Side, Side]:
    """Start the three processes; each goes into ``started`` at once, so a failure stops the others.
    ``loop`` is the agent's ``event_loop`` setting, and the bare server's loop too; ``extra``, more
    agent settings."""
    cloud_port, agent_port, bare_port = free_port(), free_port(), free_port()
    cloud = start(["-m", "edge_agent.simulator.stub_cloud", "--port", str(cloud_port), "--agent-id", AGENT_ID,
                   "--secret", SECRET, "--terminals", str(terminals), "--balance", str(10**12), "--loop", loop],
                  cloud_port, "cloud", started)
    config = {"agent_id": AGENT_ID, "agent_secret": SECRET, "cloud_url": f"http://127.0.0.1:{cloud_port}",
              "listen_host": "127.0.0.1", "listen_port": agent_port, "data_dir": str(workdir / "data"),
              "max_connections": 5000, "events_poll_s": 1.0, "status_report_s": 30.0, "event_loop": loop,
              **(extra or {})}
    (workdir / "agent.json").write_text(json.dumps(config))
    agent = start(["-m", "edge_agent", "--config", str(workdir / "agent.json"), "--log-level", "WARNING"],
                  agent_port, "agent", started)
    bare = start(["-m", "bench.edge_agent.bare_server", "--port", str(bare_port), "--loop", loop], bare_port, "bare",
                 started)
    return cloud, agent, bare


def keys(count: int) -> dict[str, str]:
    return {f"T{n:04d}": f"demo-key-T{n:04d}" for n in range(1, count + 1)}


async def wait_keys(port: int) -> None:
    """The agent answers LOGIN once it holds the terminal list from the cloud."""
    for _ in range(200):
        async with TerminalClient("127.0.0.1", port, "T0001", "demo-key-T0001") as client:
            if (await client.login()).get("ok"):
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("the agent never accepted a LOGIN")


def measure(side: Side, terminals: int, ops: int, txn_start: int, interval_s: float = 0.0) -> tuple[LoadResult, float]:
    before = cpu_seconds(side.process.pid)
    result = asyncio.run(run_load("127.0.0.1", side.port, keys(terminals), ops, cards=CARDS, txn_start=txn_start,
                                  interval_s=interval_s))
    return result, cpu_seconds(side.process.pid) - before


async def idle_connections(port: int, count: int) -> list[TerminalClient]:
    clients = [TerminalClient("127.0.0.1", port, tid, key) for tid, key in keys(count).items()]
    for start_at in range(0, count, 100):  # in waves: the backlog is not the thing measured
        batch = clients[start_at:start_at + 100]
        await asyncio.gather(*(c.connect() for c in batch))
        await asyncio.gather(*(c.login() for c in batch))
    return clients


def memory_per_idle_connection(side: Side, count: int) -> float:
    """RSS growth per logged-in idle link, measured on a process that has served nothing yet (a
    process that already served 1000 links keeps that memory for reuse, and would show ~0)."""
    async def run() -> float:
        await asyncio.sleep(1.0)  # the agent's first cloud calls are done
        before = rss_bytes(side.process.pid)
        clients = await idle_connections(side.port, count)
        await asyncio.sleep(1.0)
        after = rss_bytes(side.process.pid)
        await asyncio.gather(*(c.close() for c in clients))
        return (after - before) / count

    return asyncio.run(run())


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


def _row(level: int, name: str, result: LoadResult, cpu: float) -> float:
    lat = result.latencies_s
    per_swipe = cpu / max(1, len(lat))
    outcome = f"offline {result.offline}" + (f", refused {result.refused}" if result.refused else "") + (
        f", UNANSWERED {result.failures}" if result.failures else "")
    print(f"{level:9d} {name:>5} {result.rate:9.0f} {ms(percentile(lat, 0.5))} {ms(percentile(lat, 0.99))} "
          f"{per_swipe * 1e6:12.0f} {(1 / per_swipe if per_swipe else 0):12.0f}  {outcome}", flush=True)
    return per_swipe


def floor(cloud: Side, rate: float, count: int, workdir: Path) -> dict[str, tuple[float, float]]:
    """p50 and p99 of what any agent must wait for per lone swipe: a signed card-pay POST straight to
    the stub cloud, then the synced SQLite commit of its answer (on the agent's disk, done inline:
    no thread hand-off), one at a time, ``rate`` a second, from this process. "added" contains the
    stub cloud's round trip and a synced commit, so these are its floor on this machine now."""
    async def run() -> dict[str, tuple[float, float]]:
        client = CloudClient(AgentConfig(agent_id=AGENT_ID, agent_secret=SECRET, cloud_url=f"http://127.0.0.1:{cloud.port}"))
        conn = store.connect(workdir / "floor.sqlite")
        conn.executescript(store.SCHEMA)
        for n in range(200):  # warm-up: the WAL grows (a slower fsync) only on the first commits
            conn.execute("BEGIN IMMEDIATE")
            store.put_answers(conn, [("T0000", 800_000_000 + n, Command.CARD_PAY, "floor", {"ok": True})], time.time())
            conn.execute("COMMIT")
        trips, commits, both = [], [], []
        try:
            for n in range(count):
                began = time.perf_counter()
                reply = await client.post("/edge/v1/cards/pay", {"terminal_id": "T0001", "txn": 900_000_000 + n,
                                                                 "card": CARDS[0], "amount_fen": 1, "ts": int(time.time())})
                answered = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                store.put_answers(conn, [("T0001", 900_000_000 + n, Command.CARD_PAY, "floor", reply.body)], time.time())
                conn.execute("COMMIT")
                done = time.perf_counter()
                trips.append(answered - began)
                commits.append(done - answered)
                both.append(done - began)
                await asyncio.sleep(max(0.0, 1 / rate - both[-1]))
        finally:
            await client.aclose()
            conn.close()
        return {name: (percentile(values, 0.5), percentile(values, 0.99))
                for name, values in (("cloud", trips), ("commit", commits), ("both", both))}

    return asyncio.run(run())


def compare(agent: Side, bare: Side, level: int, ops: int, txn: int, interval_s: float) -> dict[str, float]:
    rows = {}
    for side in (agent, bare):
        result, cpu = measure(side, level, ops, txn, interval_s)
        rows[side.name] = (result, _row(level, side.name, result, cpu))
    a, b = rows["agent"][0], rows["bare"][0]
    added50 = percentile(a.latencies_s, 0.5) - percentile(b.latencies_s, 0.5)
    added99 = percentile(a.latencies_s, 0.99) - percentile(b.latencies_s, 0.99)
    ratio = a.rate / b.rate if b.rate else 0.0
    # The host's speed moves both sides' CPU per swipe (the bare server's between 48 and 93 us
    # within fifteen minutes on the shared machines); their ratio moves much less, so it is printed too.
    cpu_ratio = rows["agent"][1] / rows["bare"][1] if rows["bare"][1] else 0.0
    print(f"{level:9d} added p50 {ms(added50)} ms, p99 {ms(added99)} ms; agent/bare swipes/s {ratio:.2f}, "
          f"CPU per swipe {f'{cpu_ratio:.1f}x' if cpu_ratio else 'n/a (too few clock ticks)'}", flush=True)
    return {"agent_rate": a.rate, "bare_rate": b.rate, "added_p50_ms": added50 * 1000, "added_p99_ms": added99 * 1000,
            "agent_cpu_us": rows["agent"][1] * 1e6, "cpu_ratio": cpu_ratio, "unanswered": float(a.failures + b.failures)}


HEADER = (f"{'terminals':>9} {'side':>5} {'swipes/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'CPU/swipe us':>12} {'swipes/CPU-s':>12}  outcome")


def run(levels: list[int], total_swipes: dict[int, int], idle: int, paced: dict[int, tuple[float, int]],
        loop: str = "auto") -> dict[str, object]:
    figures: dict[str, object] = {}
    started: list[Side] = []
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        try:
            cloud, agent, bare = start_stack(Path(tmp), max(max(levels), idle), started, loop)
            print(f"event loop: {event_loop.loop_name(loop)} (agent and bare server)", flush=True)
            asyncio.run(wait_keys(agent.port))
            for side in (agent, bare):
                per = memory_per_idle_connection(side, idle)
                figures[f"{side.name}_bytes_per_idle"] = per
                print(f"memory per idle logged-in connection, {side.name}: {per / 1024:.1f} KB "
                      f"({idle} connections, fresh process)", flush=True)
            measure(agent, min(10, max(levels)), 20, 1)  # warm-up: cloud connections, SQLite pages
            measure(bare, min(10, max(levels)), 20, 1)
            print("\nback to back: every terminal swipes again as soon as it has its answer")
            print(HEADER)
            txn = 1_000_000
            for level in levels:
                ops = max(1, total_swipes[level] // level)
                figures[f"n{level}"] = compare(agent, bare, level, ops, txn, 0.0)
                txn += ops + 10
            print("\nsteady load: each terminal swipes once every INTERVAL seconds (random phase)")
            print(HEADER)
            for level, (interval, ops) in paced.items():
                print(f"{level:9d} terminals, one swipe each every {interval:g} s = {level / interval:.0f} swipes/s offered")
                figures[f"paced{level}"] = compare(agent, bare, level, ops, txn, interval)
                least = floor(cloud, level / interval, min(1000, level * ops), Path(tmp))
                figures[f"floor{level}"] = least
                for name, words in (("cloud", "the stub cloud's own card-pay round trip"),
                                    ("commit", "a synced commit of one answer"),
                                    ("both", "the two in sequence (the floor of 'added')")):
                    p50, p99 = least[name]
                    print(f"{level:9d} {words} at that rate: p50 {ms(p50)} ms, p99 {ms(p99)} ms", flush=True)
                txn += ops + 10
        finally:
            for side in reversed(started):
                side.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny N: a smoke run")
    parser.add_argument("--levels", default="1,100,1000")
    parser.add_argument("--swipes", type=int, default=0,
                        help="swipes per back-to-back level (default: 1000, or 2 per terminal if more)")
    parser.add_argument("--paced-swipes", type=int, default=10, help="swipes per terminal at 100 terminals x 1/s")
    parser.add_argument("--loop", choices=event_loop.CHOICES, default="auto",
                        help="event loop of the agent and the bare server (auto: uvloop when installed)")
    args = parser.parse_args(argv)
    levels = [int(v) for v in args.levels.split(",")]
    if args.quick:
        figures = run([1, 10], {1: 50, 10: 200}, idle=50, paced={10: (0.5, 4)}, loop=args.loop)
    else:
        figures = run(levels, {level: max(args.swipes or 1000, 2 * level) for level in levels}, idle=1000,
                      paced={100: (1.0, args.paced_swipes), 1000: (5.0, 3)}, loop=args.loop)
    unanswered = sum(int(v.get("unanswered", 0)) for v in figures.values() if isinstance(v, dict))
    return 1 if unanswered else 0


if __name__ == "__main__":
    sys.exit(main())
