"""The loop every background sender of the agent runs: wait for a wake-up or the interval, do one
round, back off exponentially (capped) while the cloud does not answer, and outlive any one failure.

A round that raises CloudUnavailable is expected (the cloud is away) and logged at INFO; anything
else is a bug or a malformed answer, logged with its traceback, and the loop goes on: a dead
background task would silently stop offline uploads or voids until the next restart.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from .cloud import CloudClient, CloudUnavailable
from .config import AgentConfig
from .store import Store

__all__ = ["BackgroundSender", "backoff_wait", "run_rounds"]

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


class BackgroundSender:
    """What the offline uploader and the void resolver share: the agent's config, store and cloud
    client, a wake-up for "the cloud may be back" or "new work", and the loop above over `round`."""

    what = "background round"  # for the log lines

    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._store = store
        self._cloud = cloud
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await run_rounds(self.round, self._wake, self._config.upload_interval_s,
                         self._config.failure_backoff_max_s, logging.getLogger(type(self).__module__), self.what)

    async def round(self) -> object:
        raise NotImplementedError
