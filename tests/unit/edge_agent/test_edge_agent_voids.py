"""The void loop's pieces: how a cloud answer becomes a kept outcome, the store's unsettled rows, and a
definite refusal kept for a person and not asked again (the stub cloud has no void endpoint: 404)."""
from __future__ import annotations

import asyncio
from pathlib import Path

from edge_agent.cloud import CloudReply
from edge_agent.store import Store, put_uncertain
from edge_agent.voids import PATH_CARD_VOID, outcome_of

from edge_agent_support import agent_world, eventually, run


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


def test_a_refusal_is_kept_and_not_asked_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        limits = {"max_payment_fen": 0}  # every offline decision is a refusal
        async with agent_world(tmp_path, offline_limits=limits) as world:
            client = await world.terminal("T0001")
            world.cloud.down = True
            assert (await client.card_pay(1, "10000001", 100))["code"] == "ERR012"
            world.cloud.down = False
            world.agent.voids.wake()
            outcomes = await eventually(lambda: [row[3:] for row in world.agent.store.uncertain_outcomes()
                                                 if row[3] is not None])
            assert outcomes == [("refused", "HTTP 404 NOT_FOUND: no such endpoint")]
            asked = world.cloud.state.calls[PATH_CARD_VOID]
            assert await world.agent.voids.resolve_pending() == 0
            assert world.cloud.state.calls[PATH_CARD_VOID] == asked

    run(scenario)
