"""Crash test: the agent is killed with SIGKILL at random points while terminals pay; after the
restarts, every payment a terminal was told OK must be booked in the cloud exactly once.

One run: a stub cloud (a thread of this process), an agent process (``python -m edge_agent``) on a
fixed data directory, and ``terminals`` simulated terminals that pay card after card for as long as
the run lasts. Each iteration picks how the cloud behaves (up; down, so that payments are decided
offline; or "answer lost": the cloud books the payment and the answer never arrives), lets the
terminals pay for a random time, and kills the agent with SIGKILL; the next iteration starts a new
agent process on the same data. A terminal that loses its link does what a real one does: it
reconnects, logs in and sends the same txn again until it gets an answer.

At the end the cloud is up, the last agent uploads what it holds, and the run checks:

- every (terminal, txn) answered OK is booked in the cloud, with the amount and card it was paid
  with (``missing``, ``wrong``);
- nothing else is booked (``unexpected``);
- every card's balance is its start minus exactly the OK answers on it (``balance_errors``).

The stub cloud books a (terminal, txn) once, like the real one, so a repeat can never show up as a
second booking: the checks above are what would catch a payment lost or altered on the way.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import TerminalClient
from .stub_cloud import StubCloud, StubCloudThread

__all__ = ["CrashReport", "run_crash_loop"]

AGENT_ID, SECRET = "E-CRASH", "crash-agent-secret"
CARD_START_FEN = 10_000_000  # large: online never refuses, so every answer is OK
PAY_PATH = "/edge/v1/cards/pay"
PAY_BATCH_PATH = "/edge/v1/cards/pay-batch"  # swipes that met a call in flight go together


@dataclass
class CrashReport:
    iterations: int = 0
    kills: int = 0
    acked_online: int = 0
    acked_offline: int = 0
    booked: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)
    wrong: list[tuple[str, int]] = field(default_factory=list)
    unexpected: list[tuple[str, int]] = field(default_factory=list)
    balance_errors: dict[str, tuple[int, int]] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong or self.unexpected or self.balance_errors)

    def summary(self) -> str:
        return (f"iterations {self.iterations}, SIGKILLs {self.kills}, acknowledged {self.acked_online} online + "
                f"{self.acked_offline} offline, booked {self.booked}; missing {len(self.missing)}, "
                f"wrong {len(self.wrong)}, unexpected {len(self.unexpected)}, "
                f"balance errors {len(self.balance_errors)}; cloud modes {self.modes}")


@dataclass
class _Run:
    cloud: StubCloudThread
    port: int
    config_path: Path
    db_path: Path
    terminals: dict[str, str]
    cards: list[str]
    rng: random.Random
    acked: dict[tuple[str, int], tuple[str, int, bool]] = field(default_factory=dict)
    stop_paying: bool = False
    process: subprocess.Popen[bytes] | None = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_agent(run: _Run) -> None:
    run.process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "--config", str(run.config_path), "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(Path(__file__).resolve().parents[2]))


def _kill_agent(run: _Run) -> None:
    if run.process is not None and run.process.poll() is None:
        os.kill(run.process.pid, signal.SIGKILL)
        run.process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _pending_uploads(db_path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM offline_records WHERE state = 'pending'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return -1


async def _terminal_loop(run: _Run, tid: str, first_txn: int) -> None:
    """Pay card after card; each txn is sent again (after reconnecting) until it is answered."""
    txn = first_txn
    client: TerminalClient | None = None
    while not run.stop_paying:
        card, amount = run.rng.choice(run.cards), run.rng.randint(1, 500)
        while True:
            try:
                if client is None or client.closed.is_set():
                    if client is not None:
                        await client.close()
                    client = TerminalClient("127.0.0.1", run.port, tid, run.terminals[tid], retransmit_s=0.5)
                    await asyncio.wait_for(client.connect(), 1.0)
                    if (await client.login(timeout=2.0)).get("ok") is not True:
                        raise ConnectionError("login refused")
                answer = await client.card_pay(txn, card, amount, timeout=3.0)
                break
            except (OSError, ConnectionError, TimeoutError, asyncio.TimeoutError):
                if client is not None:
                    await client.close()
                client = None
                await asyncio.sleep(0.05)
        if answer.get("ok") is not True:
            raise AssertionError(f"{tid}/{txn} refused: {answer}")  # the setup never refuses
        run.acked[(tid, txn)] = (card, amount, bool(answer["offline"]))
        txn += 1
    if client is not None:
        await client.close()


async def _crash_loop(run: _Run, iterations: int, report: CrashReport) -> None:
    _start_agent(run)
    start = 1_000_000
    workers = [asyncio.ensure_future(_terminal_loop(run, tid, start)) for tid in run.terminals]
    try:
        await _until(lambda: len(run.acked) >= len(run.terminals), 30)  # keys are cached now
        for _ in range(iterations):
            mode = run.rng.choice(["up", "down", "answer_lost"])
            report.modes[mode] = report.modes.get(mode, 0) + 1
            run.cloud.call(_set_mode, run.cloud.cloud, mode)
            await _until(lambda: _listening(run.port), 30)  # killed while it works, not while it starts
            await asyncio.sleep(run.rng.uniform(0.05, 0.6))
            _kill_agent(run)
            report.kills += 1
            report.iterations += 1
            _start_agent(run)
        run.cloud.call(_set_mode, run.cloud.cloud, "up")
        await asyncio.sleep(0.3)
        run.stop_paying = True
        await asyncio.wait_for(asyncio.gather(*workers), 60)
        await _until(lambda: _pending_uploads(run.db_path) == 0, 60)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if run.process is not None and run.process.poll() is None:
            run.process.send_signal(signal.SIGTERM)
            try:
                run.process.wait(10)
            except subprocess.TimeoutExpired:
                _kill_agent(run)


def _set_mode(cloud: StubCloud, mode: str) -> None:
    cloud.down = mode == "down"
    cloud.drop_after = {PAY_PATH, PAY_BATCH_PATH} if mode == "answer_lost" else set()


async def _until(check: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def _check(run: _Run, report: CrashReport) -> None:
    payments = run.cloud.call(lambda cloud: dict(cloud.state.payments), run.cloud.cloud)
    balances = run.cloud.call(lambda cloud: dict(cloud.state.cards), run.cloud.cloud)
    booked = {key: p for key, p in payments.items() if p.booked}
    report.booked = len(booked)
    spent: dict[str, int] = {card: 0 for card in run.cards}
    for key, (card, amount, offline) in run.acked.items():
        if offline:
            report.acked_offline += 1
        else:
            report.acked_online += 1
        spent[card] += amount
        payment = booked.get(key)
        if payment is None:
            report.missing.append(key)
        elif (payment.card, payment.amount_fen) != (card, amount):
            report.wrong.append(key)
    report.unexpected = sorted(key for key in booked if key not in run.acked)
    for card in run.cards:
        expected = CARD_START_FEN - spent[card]
        if balances[card] != expected:
            report.balance_errors[card] = (balances[card], expected)


def run_crash_loop(iterations: int, *, terminals: int = 4, seed: int | None = None,
                   workdir: Path | None = None) -> CrashReport:
    rng = random.Random(seed)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="edge-crash-"))
    terminal_keys = {f"T{n:04d}": f"crash-key-{n}" for n in range(1, terminals + 1)}
    cards = [str(20000000 + n) for n in range(1, 6)]
    cloud = StubCloud(AGENT_ID, SECRET, terminal_keys)
    cloud.state.cards = {card: CARD_START_FEN for card in cards}
    thread = StubCloudThread(cloud).start()
    port = _free_port()
    config = {"agent_id": AGENT_ID, "agent_secret": SECRET, "cloud_url": cloud.url,
              "listen_host": "127.0.0.1", "listen_port": port, "data_dir": str(workdir / "data"),
              "card_pay_deadline_s": 0.3, "events_poll_s": 0.5, "upload_interval_s": 0.1,
              "keys_refresh_s": 5.0, "cloud_backoff_s": 0.02, "cloud_backoff_max_s": 0.1,
              "failure_backoff_max_s": 0.2, "cloud_timeout_s": 3.0,
              "offline_limits": {"max_payment_fen": 1000, "max_card_day_fen": 10**9,
                                 "max_card_day_count": 10**6, "max_terminal_pending": 10**6}}
    config_path = workdir / "agent.json"
    config_path.write_text(json.dumps(config))
    run = _Run(thread, port, config_path, workdir / "data" / "edge-agent.sqlite3", terminal_keys, cards, rng)
    report = CrashReport()
    try:
        asyncio.run(_crash_loop(run, iterations, report))
        _check(run, report)
    finally:
        _kill_agent(run)
        thread.stop()
    return report


def main() -> None:  # pragma: no cover - bench/edge_agent/crash.py is the usual way in
    import argparse

    parser = argparse.ArgumentParser(description="SIGKILL the edge agent at random points while terminals pay")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--terminals", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    started = time.monotonic()
    report = run_crash_loop(args.iterations, terminals=args.terminals, seed=args.seed)
    print(report.summary())
    print(f"{'PASS' if report.ok else 'FAIL'} in {time.monotonic() - started:.0f} s")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
