"""The void loop: how a cloud answer becomes a kept outcome, the store's unsettled rows, uncertain refusals
settled through the stub cloud's void (a payment that landed is given back, one that never did is claimed),
a definite refusal kept for a person and not asked again, and a busy cloud (503) that leaves the row for the
next round."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge_agent.cloud import CloudReply, CloudUnavailable
from edge_agent.store import Store, put_uncertain
from edge_agent.voids import PATH_CARD_VOID, outcome_of

from edge_agent_support import CARDS, agent_world, eventually, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)

EVERY_OFFLINE_DECISION_REFUSES = {"max_payment_fen": 0}


def settled(world) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [row[3:] for row in world.agent.store.uncertain_outcomes() if row[3] is not None]


async def refused_offline_while_the_attempt_lands(world, txn: int) -> None:  # type: ignore[no-untyped-def]
    """The cloud answers T0001's 3 yuan swipe after the agent's deadline: the terminal hears ERR012
    (refused offline), the agent keeps an uncertain row, and the attempt still books the payment."""
    client = await world.terminal("T0001")
    world.cloud.hang_s = 1.0
    assert (await client.card_pay(txn, "10000001", 300))["code"] == "ERR012"
    assert ("T0001", txn) in world.agent.store.unresolved_uncertain(10)
    await eventually(lambda: world.cloud.booked())
    world.cloud.hang_s = 0.0
    assert world.cloud.state.cards["10000001"] == CARDS["10000001"] - 300


def test_outcome_of_each_answer() -> None:
    reversed_ = CloudReply(200, {"ok": True, "outcome": "reversed", "reversed_fen": 300, "balance_fen": 1000})
    assert outcome_of(reversed_) == ("reversed", "300 fen given back, balance 1000 fen")
    assert outcome_of(CloudReply(200, {"ok": True, "outcome": "never_booked"})) == ("never booked", "")
    conflict = CloudReply(409, {"ok": False, "code": "CONFLICT", "message": "the card holds no account"})
    assert outcome_of(conflict) == ("refused", "HTTP 409 CONFLICT: the card holds no account")
    assert outcome_of(CloudReply(404, {"ok": False, "code": "NOT_FOUND"})) == ("refused", "HTTP 404 NOT_FOUND")
    assert outcome_of(CloudReply(401, {"ok": False, "code": "UNAUTHORIZED"})) is None  # the agent's setup
    assert outcome_of(CloudReply(200, {"ok": True, "outcome": "maybe"})) is None  # not an answer to keep


def test_store_keeps_the_first_outcome(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Store.open(tmp_path / "s.sqlite3")
        try:
            await store.write(lambda c: [put_uncertain(c, "T1", txn, {"ok": False}, "timeout", float(txn))
                                         for txn in (1, 2)])
            assert store.unresolved_uncertain(10) == [("T1", 1), ("T1", 2)]
            await store.resolve_uncertain("T1", 1, "reversed", "300 fen given back", 10.0)
            await store.resolve_uncertain("T1", 1, "never booked", "", 11.0)  # a late second answer: ignored
            assert store.unresolved_uncertain(10) == [("T1", 2)]
            assert store.uncertain_outcomes() == [("T1", 1, "timeout", "reversed", "300 fen given back"),
                                                  ("T1", 2, "timeout", None, None)]
            assert store.uncertain_rows() == [("T1", 1, "timeout"), ("T1", 2, "timeout")]  # unchanged
        finally:
            store.close()

    asyncio.run(scenario())


def test_a_payment_that_landed_after_the_refusal_is_given_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=EVERY_OFFLINE_DECISION_REFUSES) as world:
            await refused_offline_while_the_attempt_lands(world, 1)
            world.agent.voids.wake()
            assert await eventually(lambda: settled(world)) == [
                ("reversed", f"300 fen given back, balance {CARDS['10000001']} fen")]
            assert world.cloud.state.cards == CARDS and world.cloud.booked() == []  # the holder has the money back
            assert world.agent.store.unresolved_uncertain(10) == []

    run(scenario)


def test_a_payment_that_never_landed_is_claimed_and_never_books(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=EVERY_OFFLINE_DECISION_REFUSES) as world:
            client = await world.terminal("T0001")
            world.cloud.down = True
            assert (await client.card_pay(2, "10000001", 300))["code"] == "ERR012"
            world.cloud.down = False
            world.agent.voids.wake()
            assert await eventually(lambda: settled(world)) == [("never booked", "")]
            assert world.cloud.state.voids[("T0001", 2)]["outcome"] == "never_booked"
            assert world.cloud.state.cards == CARDS and world.cloud.booked() == []

    run(scenario)


def test_a_busy_cloud_leaves_the_row_for_the_next_round(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=EVERY_OFFLINE_DECISION_REFUSES) as world:
            await refused_offline_while_the_attempt_lands(world, 3)
            world.cloud.void_busy = True  # the card's write keeps conflicting: 503 "card busy"
            with pytest.raises(CloudUnavailable, match="HTTP 503 ERR012"):
                await world.agent.voids.resolve_pending()
            asked = world.cloud.state.calls[PATH_CARD_VOID]
            await eventually(lambda: world.cloud.state.calls[PATH_CARD_VOID] > asked)  # the loop asks again
            assert world.agent.store.unresolved_uncertain(10) == [("T0001", 3)] and settled(world) == []
            assert world.cloud.state.cards["10000001"] == CARDS["10000001"] - 300  # nothing given back yet

            world.cloud.void_busy = False  # the next round settles it
            assert await eventually(lambda: settled(world)) == [
                ("reversed", f"300 fen given back, balance {CARDS['10000001']} fen")]
            assert world.cloud.state.cards == CARDS and world.cloud.booked() == []

    run(scenario)


def test_a_refusal_is_kept_and_not_asked_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=EVERY_OFFLINE_DECISION_REFUSES) as world:
            client = await world.terminal("T0001")
            world.cloud.down = True
            assert (await client.card_pay(1, "10000001", 100))["code"] == "ERR012"
            del world.cloud.state.terminals["T0001"]  # the terminal was removed at the cloud meanwhile
            world.cloud.down = False
            world.agent.voids.wake()
            outcomes = await eventually(lambda: settled(world))
            assert outcomes == [("refused", "HTTP 404 NOT_FOUND: unknown terminal")]
            assert world.cloud.state.voids == {} and world.cloud.state.cards == CARDS
            asked = world.cloud.state.calls[PATH_CARD_VOID]
            assert await world.agent.voids.resolve_pending() == 0
            assert world.cloud.state.calls[PATH_CARD_VOID] == asked

    run(scenario)
