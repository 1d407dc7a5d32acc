"""Card payments go to the cloud in natural batches: swipes that arrive while a card-pay call is in
flight go together in one signed request, their answers stored in one SQLite commit; the 800 ms
deadline stays per swipe; a cloud without the batch endpoint is asked item by item."""

from __future__ import annotations

import pytest

import asyncio
from pathlib import Path
from typing import Any

from edge_agent_support import AGENT_ID, CARDS, SECRET, TERMINALS, agent_world, config_for, eventually, run

from edge_agent.answers import digest
from edge_agent.card_batch import CardPayBatcher, NotSent
from edge_agent.cloud import CloudClient, CloudUnavailable
from edge_agent.payments import online_answer
from edge_agent.protocol import Command
from edge_agent.simulator.stub_cloud import StubCloud
from edge_agent.store import Store

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)

PAY, BATCH = "/edge/v1/cards/pay", "/edge/v1/cards/pay-batch"


def payload(txn: int, card: str = "10000001", amount: int = 100, tid: str = "T0001") -> dict[str, Any]:
    return {"terminal_id": tid, "txn": txn, "card": card, "amount_fen": amount, "ts": 1}


class Bench:
    """A batcher (one call in flight at a time) on a real store and a stub cloud, no agent around it."""

    def __init__(self, tmp_path: Path, cloud: StubCloud, **options: Any) -> None:
        self.cloud = cloud
        self.client = CloudClient(config_for(cloud.url, tmp_path, card_pay_deadline_s=0.95))
        self.store = Store.open(tmp_path / "agent.db")
        self.batcher = CardPayBatcher(self.client, self.store, online_answer, **{"max_in_flight": 1, **options})

    def pay(self, txn: int, amount: int = 100, card: str = "10000001", deadline_s: float = 0.95
            ) -> asyncio.Task[dict[str, Any]]:
        key = digest(Command.CARD_PAY, card, amount)
        return asyncio.get_running_loop().create_task(
            self.batcher.pay("T0001", txn, key, payload(txn, card, amount), deadline_s))

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()
        await self.cloud.stop()


async def bench(tmp_path: Path, **options: Any) -> Bench:
    cloud = await StubCloud(AGENT_ID, SECRET, TERMINALS).start()
    cloud.state.cards = dict(CARDS)
    return Bench(tmp_path, cloud, **options)


def test_swipes_during_a_call_go_as_one_request_and_one_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        b = await bench(tmp_path)
        try:
            # Six swipes in one turn of the loop: the first finds no call in flight and goes alone,
            # the five others find it in flight and wait for it, then go together.
            answers = await asyncio.gather(b.pay(1), *(b.pay(txn, amount=10 * txn) for txn in range(2, 7)))
            assert [a["ok"] for a in answers] == [True] * 6 and {a["offline"] for a in answers} == {False}
            assert (b.cloud.state.calls[PAY], b.cloud.state.calls[BATCH]) == (1, 1)
            assert b.batcher.stats.by_size == {1: 1, 5: 1}
            assert b.store.commits == 2  # one for the lone swipe, one for the batch of five
            assert b.cloud.state.cards["10000001"] == 10_000 - 100 - 10 * (2 + 3 + 4 + 5 + 6)
            for txn, answer in enumerate(answers, start=1):
                assert b.store.get_answer("T0001", txn).body == answer  # stored before it was handed out
            assert answers[-1]["balance_fen"] == b.cloud.state.cards["10000001"]
        finally:
            await b.close()

    run(scenario)


def test_calls_overlap_at_once_until_the_agent_is_busy_then_swipes_wait_for_the_call_in_flight(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        b = await bench(tmp_path, max_in_flight=4, overlap_after_s=0.9)
        try:
            b.cloud.hang_s = 0.3
            # Not busy (every call so far carried one payment): each swipe gets a call of its own at
            # once, up to 4 in flight; the 5th and 6th queue and go together when a call returns.
            swipes = [b.pay(txn) for txn in range(1, 7)]
            await eventually(lambda: b.batcher.in_flight == 4)
            await eventually(lambda: b.batcher.stats.by_size.get(2) == 1)
            # Busy now (the last call carried two): a swipe that finds a call in flight waits for one
            # to return, however few calls are in flight.
            late = b.pay(7)
            await eventually(lambda: b.batcher.in_flight == 1)  # the four singles are back
            assert b.batcher.stats.calls == 5  # no call of its own for txn 7 yet
            answers = await asyncio.gather(*swipes, late)
            assert [a["ok"] for a in answers] == [True] * 7
            assert b.batcher.stats.by_size == {1: 5, 2: 1}  # txn 7 went when the pair came back
            assert b.cloud.state.cards["10000001"] == 10_000 - 7 * 100
            assert [b.store.get_answer("T0001", txn).body for txn in range(1, 8)] == answers
        finally:
            await b.close()

    run(scenario)


def test_a_busy_queue_gets_a_call_of_its_own_when_full_or_after_overlap_after_s(tmp_path: Path) -> None:
    async def scenario() -> None:
        b = await bench(tmp_path, max_in_flight=4, max_items=2, overlap_after_s=0.15)
        try:
            b.cloud.hang_s = 0.35
            # Four single calls, then a pair once one returns: busy from then on.
            opening = [b.pay(txn) for txn in range(1, 7)]
            await eventually(lambda: b.batcher.stats.by_size.get(2) == 1)
            await eventually(lambda: b.batcher.in_flight == 1)  # only the pair is in flight
            # A full batch (2 items) gets a call at once, busy or not.
            full = [b.pay(7), b.pay(8)]
            await eventually(lambda: b.batcher.stats.by_size.get(2) == 2, timeout=0.2)
            calls = b.batcher.stats.calls
            # A single swipe waits overlap_after_s (0.15 s), not for the calls in flight (0.35 s each).
            single = b.pay(9)
            await asyncio.sleep(0.02)
            assert b.batcher.stats.calls == calls  # still queued
            await eventually(lambda: b.batcher.stats.calls == calls + 1, timeout=0.3)
            assert b.batcher.in_flight == 3  # the pairs are still out: the timer sent it
            answers = await asyncio.gather(*opening, *full, single)
            assert all(a["ok"] for a in answers)
            assert b.batcher.stats.by_size == {1: 5, 2: 2}
            assert b.cloud.state.cards["10000001"] == 10_000 - 9 * 100
        finally:
            await b.close()

    run(scenario)


def test_a_batch_gets_each_items_own_answer(tmp_path: Path) -> None:
    async def scenario() -> None:
        b = await bench(tmp_path)
        try:
            _, too_much, unknown, fits = await asyncio.gather(
                b.pay(1), b.pay(2, amount=600, card="10000003"), b.pay(3, card="99999999"),
                b.pay(4, amount=400, card="10000003"))
            assert (too_much["ok"], too_much["code"]) == (False, "ERR007")
            assert (unknown["ok"], unknown["code"]) == (False, "ERR001")
            assert (fits["ok"], fits["balance_fen"]) == (True, 100)
            assert b.batcher.stats.by_size == {1: 1, 3: 1} and b.cloud.state.cards["10000003"] == 100
        finally:
            await b.close()

    run(scenario)


def test_a_queued_swipe_past_its_deadline_is_never_sent(tmp_path: Path) -> None:
    async def scenario() -> None:
        b = await bench(tmp_path)
        try:
            b.cloud.hang_s = 0.6
            first = b.pay(1, deadline_s=0.3)
            await eventually(lambda: b.batcher.in_flight == 1)
            queued = b.pay(2, deadline_s=0.1)
            outcomes = await asyncio.gather(first, queued, return_exceptions=True)
            # The one in flight may have landed (the caller records an offline refusal as uncertain);
            # the queued one never left, and says so.
            assert isinstance(outcomes[0], CloudUnavailable) and not isinstance(outcomes[0], NotSent)
            assert isinstance(outcomes[1], NotSent)
            await eventually(lambda: ("T0001", 1) in b.cloud.state.payments)  # the one in flight landed
            b.cloud.hang_s = 0.0
            assert (await b.pay(3))["ok"] is True  # the next call
            assert sorted(b.cloud.state.payments) == [("T0001", 1), ("T0001", 3)]  # txn 2 never left
            assert b.store.get_answer("T0001", 1) is None and b.store.get_answer("T0001", 2) is None
        finally:
            await b.close()

    run(scenario)


def test_many_terminals_at_once_through_the_agent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, card_pay_deadline_s=0.95) as world:
            clients = [await world.terminal(tid) for tid in TERMINALS]
            world.cloud.hang_s = 0.15
            first = asyncio.create_task(clients[0].card_pay(1, "10000001", 100))
            await eventually(lambda: world.agent.payments.batches.in_flight == 1)
            swipes = [(c, txn) for txn in (2, 3) for c in clients]
            answers = await asyncio.gather(first, *(c.card_pay(txn, "10000002", 50) for c, txn in swipes))
            assert all(a["ok"] and not a["offline"] for a in answers)
            assert world.cloud.state.calls[BATCH] >= 1
            stats = world.agent.payments.batches.stats
            assert stats.items == 7 and stats.calls == world.cloud.state.calls[PAY] + world.cloud.state.calls[BATCH]
            assert world.cloud.state.cards["10000002"] == 10_000 - 6 * 50
            payment_calls = (world.cloud.state.calls[PAY], world.cloud.state.calls[BATCH])
            for (client, txn), answer in zip(swipes, answers[1:]):  # repeats: the stored answers
                assert await client.card_pay(txn, "10000002", 50) == answer
            # and no payment call (PARAMS fetches after a login run in the background meanwhile)
            assert (world.cloud.state.calls[PAY], world.cloud.state.calls[BATCH]) == payment_calls

    run(scenario)


def test_a_cloud_without_batches_is_asked_item_by_item(tmp_path: Path) -> None:
    async def scenario() -> None:
        b = await bench(tmp_path)
        try:
            b.cloud.card_batches = False
            answers = await asyncio.gather(*(b.pay(txn) for txn in (1, 2, 3, 4)))  # 1 alone, then 3 together
            assert all(a["ok"] for a in answers)
            assert b.cloud.state.calls[BATCH] == 1  # answered 404: the three are paid one by one
            assert b.cloud.state.calls[PAY] == 4 and b.cloud.state.cards["10000001"] == 10_000 - 400
            assert all(a["ok"] for a in await asyncio.gather(*(b.pay(txn) for txn in (5, 6, 7))))
            assert b.cloud.state.calls[BATCH] == 1  # never asked again
            assert b.cloud.state.calls[PAY] == 7 and b.cloud.state.cards["10000001"] == 10_000 - 700
        finally:
            await b.close()

    run(scenario)


def test_a_batch_refused_401_is_decided_offline(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, card_pay_deadline_s=0.95) as world:
            clients = [await world.terminal(tid) for tid in TERMINALS]
            world.cloud.state.secret = "rotated"  # the cloud no longer accepts the agent's signature
            answers = await asyncio.gather(*(c.card_pay(7, "10000001", 100) for c in clients))
            assert all(a["ok"] and a["offline"] for a in answers)
            assert world.cloud.state.cards["10000001"] == 10_000  # nothing booked online
            assert world.agent.store.offline_counts().get("pending") == 3

    run(scenario)


def test_repeats_are_found_whatever_the_order_of_txns_and_after_a_restart(tmp_path: Path) -> None:
    """The in-memory "highest txn" shortcut of ExactlyOnce never hides a stored answer."""
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            high = await client.card_pay(50, "10000001", 100)
            low = await client.card_pay(7, "10000001", 200)  # a txn below the highest
            assert await client.card_pay(7, "10000001", 200) == low
            assert await client.card_pay(50, "10000001", 100) == high
            await world.restart()
            client = await world.terminal("T0001")
            assert await client.card_pay(50, "10000001", 100) == high
            assert await client.card_pay(7, "10000001", 200) == low
            assert (await client.card_pay(7, "10000001", 999))["code"] == "ERR011"  # reused for another amount
            assert world.cloud.state.calls[PAY] == 2 and world.cloud.state.cards["10000001"] == 10_000 - 300

    run(scenario)


def test_batch_size_and_calls_in_flight_come_from_the_config(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, card_pay_deadline_s=0.95, card_pay_calls_in_flight=1,
                               card_pay_batch_items=2) as world:
            client = await world.terminal("T0001")
            world.cloud.hang_s = 0.15
            first = asyncio.create_task(client.card_pay(1, "10000001", 100))
            await eventually(lambda: world.agent.payments.batches.in_flight == 1)
            queued = [client.card_pay(txn, "10000002", 50) for txn in range(2, 7)]
            answers = await asyncio.gather(first, *queued)
            assert all(a["ok"] and not a["offline"] for a in answers)
            stats = world.agent.payments.batches.stats
            assert stats.items == 6 and stats.largest == 2  # the queued went at most 2 a call, one call at a time
            assert world.cloud.state.cards["10000002"] == 10_000 - 5 * 50

    run(scenario)


def test_one_shared_deadline_timer_gives_each_swipe_up_at_its_own_deadline(tmp_path: Path) -> None:
    """The deadlines share one loop timer (armed at the earliest one still pending): each swipe is
    still given up at its own deadline, in order, also after a swipe answered in time was left at
    the head of the line, also for swipes whose cloud call is still going on (only the timer can
    give them up then), and for a swipe with a shorter deadline than those queued before it."""
    async def scenario() -> None:
        b = await bench(tmp_path)
        loop = asyncio.get_running_loop()
        given_up: list[tuple[int, float, float, int, BaseException]] = []  # txn, due, at, calls in flight, why

        async def swipe(txn: int, deadline_s: float) -> None:
            due = loop.time() + deadline_s
            try:
                await b.pay(txn, deadline_s=deadline_s)
            except CloudUnavailable as exc:
                given_up.append((txn, due, loop.time(), b.batcher.in_flight, exc))

        try:
            assert (await b.pay(1, deadline_s=0.1))["ok"] is True  # answered; its deadline still ahead
            b.cloud.hang_s = 1.0
            first = asyncio.create_task(swipe(2, 0.2))
            await eventually(lambda: b.batcher.in_flight == 1)
            # Queued behind 2's call; 3, 4 and 5 then go together in one call that lasts until 5's
            # deadline, so 3 and 4 can be given up only by the deadline timer. 6 has a shorter
            # deadline than those queued before it.
            queued = [asyncio.create_task(swipe(txn, deadline_s))
                      for txn, deadline_s in ((3, 0.25), (4, 0.27), (5, 0.9), (6, 0.05))]
            await asyncio.gather(first, *queued)
            assert [txn for txn, *_ in given_up] == [6, 2, 3, 4, 5]  # deadline order
            for txn, due, at, _calls, _exc in given_up:
                assert at >= due, txn  # never early
            by_txn = {txn: (calls, type(exc)) for txn, _due, _at, calls, exc in given_up}
            assert by_txn[3] == by_txn[4] == (1, CloudUnavailable)  # while their call was still going
            assert by_txn[6] == (1, NotSent) and by_txn[2][1] is by_txn[5][1] is CloudUnavailable
            await eventually(lambda: {("T0001", t) for t in (2, 3, 4, 5)} <= set(b.cloud.state.payments))
            b.cloud.hang_s = 0.0
            assert (await b.pay(7))["ok"] is True  # the timer re-arms after the line emptied
            assert b.store.get_answer("T0001", 7) is not None
            assert all(b.store.get_answer("T0001", txn) is None for txn in range(2, 7))  # given up: not stored
            assert sorted(b.cloud.state.payments) == [("T0001", t) for t in (1, 2, 3, 4, 5, 7)]  # 6 never left
        finally:
            await b.close()

    run(scenario)
