"""Exactly once per (tid, txn): the first answer is stored durably and given again to repeats.

Two layers, because a repeat can come while the first is still being worked on (a terminal
resends after 3 s; a QR order or a payment code can take longer) or after a restart:

- in memory, the request in progress: a repeat waits for it and gets its answer;
- in SQLite, the answer: written (and synced) *before* the terminal sees it, so that an answer a
  terminal saw is an answer the agent gives again after any crash.

Looking an answer up costs a SQLite read per request; most requests are new, and a terminal counts
its txn up, so the highest txn each terminal has had an answer computed for is kept in memory
(read from SQLite the first time the terminal is seen): a txn above it cannot have an answer yet
and skips the read. Every answer is written while its (tid, txn) is in progress here, and the
highest txn moves before the request stops being in progress, so a repeat never misses an answer.

A repeat with the same txn but a different request (another command, amount, card or payment
code) is refused with ERR011 交易号重复 and changes nothing. An outcome that is not final (the
cloud did not answer a QR order; a payment code still PAYING) is not stored: the repeat asks the
cloud again, which is idempotent per (terminal_id, txn) itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .answers import DUPLICATE_TXN_MSG, refusal
from .store import Store

__all__ = ["ExactlyOnce", "Outcome"]


@dataclass(frozen=True)
class Outcome:
    body: dict[str, Any]
    store: bool  # True: final, store it now; False: not final, or stored already by the computation


class ExactlyOnce:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._inflight: dict[tuple[str, int], _Running] = {}
        self._highest: dict[str, int] = {}  # tid -> highest txn that may have a stored answer

    @property
    def in_progress(self) -> int:
        return len(self._inflight)

    async def run(self, tid: str, txn: int, cmd: int, digest: str,
                  compute: Callable[[], Awaitable[Outcome]]) -> dict[str, Any]:
        highest = self._highest.get(tid)
        if highest is None:
            highest = self._highest[tid] = self._store.highest_answered_txn(tid)
        stored = self._store.get_answer(tid, txn) if txn <= highest else None
        if stored is not None:
            return stored.body if (stored.cmd, stored.digest) == (cmd, digest) else _duplicate(cmd, txn)
        key = (tid, txn)
        running = self._inflight.get(key)
        if running is not None:
            if (running.cmd, running.digest) != (cmd, digest):
                return _duplicate(cmd, txn)
            if running.future is None:
                running.future = asyncio.get_running_loop().create_future()
            return await asyncio.shield(running.future)
        running = self._inflight[key] = _Running(cmd, digest)
        try:
            outcome = await compute()
            body = outcome.body
            if outcome.store:
                kept = await self._store.put_answer(tid, txn, cmd, digest, body, self._clock())
                body = kept.body if (kept.cmd, kept.digest) == (cmd, digest) else _duplicate(cmd, txn)
        except asyncio.CancelledError:
            if running.future is not None:
                running.future.cancel()  # shutting down: the waiters stop too
            raise
        except Exception as exc:
            if running.future is not None:
                running.future.set_exception(exc)
                running.future.exception()  # retrieved: waiters, if any, get it; nobody else must log it
            raise
        else:
            if running.future is not None:
                running.future.set_result(body)
            return body
        finally:
            if txn > self._highest.get(tid, txn - 1):
                self._highest[tid] = txn  # before the key leaves _inflight: see the module docstring
            del self._inflight[key]


class _Running:
    """A request in progress. Its future is made only when a repeat comes to wait for it: most
    requests have no repeat, and a future per request was pure event-loop overhead."""

    __slots__ = ("cmd", "digest", "future")

    def __init__(self, cmd: int, digest: str) -> None:
        self.cmd = cmd
        self.digest = digest
        self.future: asyncio.Future[dict[str, Any]] | None = None


def _duplicate(cmd: int, txn: int) -> dict[str, Any]:
    return refusal(cmd, txn, "ERR011", DUPLICATE_TXN_MSG)
