"""Load mode of the simulator: N terminals log in, each does M card swipes back to back; the
latency of every swipe is kept, and a histogram printed at the end."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from .client import TerminalClient

__all__ = ["LoadResult", "histogram", "percentile", "run_load"]

BUCKETS_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, float("inf"))


@dataclass
class LoadResult:
    terminals: int
    ops: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    offline: int = 0  # answered OK, decided offline by the agent
    refused: dict[str, int] = field(default_factory=dict)  # answered "no", by code
    failures: int = 0  # no answer at all (timeout, link lost)

    @property
    def rate(self) -> float:
        return len(self.latencies_s) / self.seconds if self.seconds else 0.0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation); 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def histogram(latencies_s: list[float], width: int = 40) -> str:
    counts = [0] * len(BUCKETS_MS)
    for value in latencies_s:
        ms = value * 1000
        counts[next(i for i, edge in enumerate(BUCKETS_MS) if ms <= edge)] += 1
    top = max(counts) or 1
    lines = []
    lower = 0.0
    for edge, count in zip(BUCKETS_MS, counts):
        if count:
            label = f"{lower:g}-{edge:g} ms" if edge != float("inf") else f">{lower:g} ms"
            lines.append(f"{label:>14} {count:7d} {'#' * max(1, round(width * count / top))}")
        lower = edge
    return "\n".join(lines)


async def run_load(host: str, port: int, keys: dict[str, str], ops: int, *, cards: list[str],
                   amount_fen: int = 1, txn_start: int | None = None, interval_s: float = 0.0) -> LoadResult:
    """Every terminal of ``keys`` logs in, then swipes ``ops`` times, one at a time as a terminal
    does: back to back (``interval_s`` 0, the most the agent can take), or one swipe every
    ``interval_s`` seconds per terminal, starting at random offsets (a steady offered load)."""
    clients = [TerminalClient(host, port, tid, key) for tid, key in keys.items()]
    await asyncio.gather(*(client.connect() for client in clients))
    await asyncio.gather(*(client.login() for client in clients))
    first = TerminalClient.next_txn() * 1000 if txn_start is None else txn_start
    result = LoadResult(len(clients), ops, 0.0)

    async def swipes(index: int, client: TerminalClient) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + random.uniform(0, interval_s)
        for n in range(ops):
            if interval_s:
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                next_at += interval_s
            started = time.perf_counter()
            try:
                answer = await client.card_pay(first + n, cards[(index + n) % len(cards)], amount_fen)
            except Exception:  # noqa: BLE001 - counted, the run goes on
                result.failures += 1
                continue
            result.latencies_s.append(time.perf_counter() - started)
            if answer.get("ok") is not True:
                code = str(answer.get("code"))
                result.refused[code] = result.refused.get(code, 0) + 1
            elif answer.get("offline"):
                result.offline += 1

    started = time.perf_counter()
    await asyncio.gather(*(swipes(i, c) for i, c in enumerate(clients)))
    result.seconds = time.perf_counter() - started
    await asyncio.gather(*(client.close() for client in clients))
    return result
