"""The loop every background sender of the agent runs: wait for a wake-up or the interval, do one
round, back off exponentially (capped) while the cloud does not answer, and outlive any one failure.

A round that raises CloudUnavailable is expected (the cloud is away) and logged at INFO; anything
else is a bug or a malformed answer, logged with its traceback, and the loop goes on: a dead
background task would silently stop offline uploads or voids until the next restart.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .cloud import CloudUnavailable

__all__ = ["backoff_wait", "run_rounds"]

MAX_DOUBLINGS = 10


def backoff_wait(interval_s: float, cap_s: float, failures: int) -> float:
    """The wait before the next round: the interval, doubled per failure in a row, at most cap_s."""
    return interval_s if failures == 0 else min(cap_s, interval_s * 2 ** failures)


async def run_rounds(round_: Callable[[], Awaitable[object]], wake: asyncio.Event, interval_s: float,
                     cap_s: float, log: logging.Logger, what: str) -> None:
    failures = 0
    while True:
        try:
            await asyncio.wait_for(wake.wait(), backoff_wait(interval_s, cap_s, failures))
        except TimeoutError:
            pass
        wake.clear()
        try:
            await round_()
        except CloudUnavailable as exc:
            failures = min(failures + 1, MAX_DOUBLINGS)
            log.info("%s postponed: %s", what, exc)
        except Exception:  # noqa: BLE001 - the loop must outlive any one bad round
            failures = min(failures + 1, MAX_DOUBLINGS)
            log.exception("%s failed", what)
        else:
            failures = 0
