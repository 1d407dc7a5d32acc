"""The background senders' loop: backoff per failure in a row, and a loop that outlives any failure."""
from __future__ import annotations

import asyncio
import logging

from edge_agent.background import backoff_wait, run_rounds
from edge_agent.cloud import CloudUnavailable


def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    assert [backoff_wait(0.5, 5.0, n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_rounds_go_on_after_cloud_outages_and_bugs() -> None:
    outcomes: list[BaseException | None] = [CloudUnavailable("away"), RuntimeError("bug"), None]
    rounds: list[int] = []
    done = asyncio.Event()

    async def one_round() -> None:
        rounds.append(len(rounds))
        outcome = outcomes[len(rounds) - 1] if len(rounds) <= len(outcomes) else None
        if len(rounds) == len(outcomes):
            done.set()
        if outcome is not None:
            raise outcome

    async def scenario() -> None:
        wake = asyncio.Event()
        task = asyncio.create_task(run_rounds(one_round, wake, 0.001, 0.002, logging.getLogger("t"), "test"))
        await asyncio.wait_for(done.wait(), 5)
        task.cancel()

    asyncio.run(scenario())
    assert len(rounds) >= 3  # the failures stopped nothing
