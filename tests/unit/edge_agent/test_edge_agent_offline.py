"""Offline store-and-forward against the stub cloud: decisions within the limits while the cloud is
away, the upload when it is back (balances and bookings exactly right), rejected records kept, and
the terminals' own OFFLINE_UPLOAD batches."""

from __future__ import annotations

import pytest

from pathlib import Path

from edge_agent.blacklist import blacklist_pushes
from edge_agent.protocol import Command, Frame, encode_frame

from edge_agent_support import agent_world, eventually, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)

LIMITS = {"max_payment_fen": 1000, "max_card_day_fen": 1500, "max_card_day_count": 3, "max_terminal_pending": 50}


def test_outage_then_upload_books_exactly_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=LIMITS) as world:
            one, two = await world.terminal("T0001"), await world.terminal("T0002")
            assert (await one.card_pay(1, "10000001", 100))["offline"] is False
            world.cloud.down = True
            answers = [await one.card_pay(2, "10000001", 600), await two.card_pay(3, "10000001", 600),
                       await two.card_pay(4, "10000001", 600),  # over the card's 1500 a day: refused
                       await one.card_pay(5, "10000002", 1001),  # over 1000 a payment
                       await one.card_pay(6, "10000002", 1000)]
            assert [(a["ok"], a["code"], a["offline"]) for a in answers] == [
                (True, "OK", True), (True, "OK", True), (False, "ERR012", True), (False, "ERR012", True),
                (True, "OK", True)]
            assert answers[0]["balance_fen"] is None and answers[0]["voice"] == "消费6.00元"
            assert world.cloud.state.cards == {"10000001": 9900, "10000002": 10000, "10000003": 500}
            assert world.agent.store.offline_counts() == {"pending": 3}
            world.cloud.down = False
            await eventually(lambda: world.agent.store.offline_counts() == {"accepted": 3})
            assert world.cloud.state.cards == {"10000001": 8700, "10000002": 9000, "10000003": 500}
            booked = sorted((p.terminal_id, p.txn, p.amount_fen, p.source) for p in world.cloud.booked())
            assert booked == [("T0001", 1, 100, "online"), ("T0001", 2, 600, "offline"), ("T0001", 6, 1000, "offline"),
                              ("T0002", 3, 600, "offline")]
            assert {(tid, txn) for tid, txn, _ in world.agent.store.uncertain_rows()} == {("T0002", 4), ("T0001", 5)}

    run(scenario)


def test_count_limit_and_blacklist(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=LIMITS) as world:
            world.cloud.report_lost("10000002")
            await eventually(lambda: world.agent.blacklist.version == 1)
            client = await world.terminal("T0001")
            assert (await client.heartbeat())["blacklist_ver"] == 1
            world.cloud.down = True
            lost = await client.card_pay(10, "10000002", 100)
            assert (lost["ok"], lost["code"], lost["msg"]) == (False, "ERR008", "挂失卡")
            codes = [(await client.card_pay(txn, "10000001", 10))["code"] for txn in (11, 12, 13, 14)]
            assert codes == ["OK", "OK", "OK", "ERR012"]  # three a card a day

    run(scenario)


def test_record_the_cloud_rejects_is_kept_and_reported(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=LIMITS) as world:
            client = await world.terminal("T0001")
            world.cloud.down = True
            assert (await client.card_pay(20, "10000003", 800))["ok"] is True  # the card holds only 500
            world.cloud.down = False
            await eventually(lambda: world.agent.store.offline_counts() == {"rejected": 1})
            [row] = world.agent.store.offline_rows("rejected")
            assert (row.tid, row.txn, row.amount_fen, row.code) == ("T0001", 20, 800, "ERR007")
            assert world.cloud.state.cards["10000003"] == 500 and world.cloud.booked() == []
            assert (await client.card_pay(20, "10000003", 800))["ok"] is True  # the terminal's answer stands

    run(scenario)


def test_terminal_offline_upload_online_and_while_the_cloud_is_away(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            batch = [{"txn": 30, "card": "10000001", "amount_fen": 120, "ts": 1_795_000_000},
                     {"txn": 31, "card": "10000003", "amount_fen": 900, "ts": 1_795_000_010},  # overdraft
                     {"txn": 32, "card": "10000001", "amount_fen": 0, "ts": 1_795_000_020}]
            answer = await client.offline_upload(batch)
            assert answer == {"accepted": [30], "rejected": [{"txn": 32, "code": "ERR009"}, {"txn": 31, "code": "ERR007"}]}
            assert await client.offline_upload(batch[:2]) == {"accepted": [30], "rejected": [{"txn": 31, "code": "ERR007"}]}
            world.cloud.down = True
            later = [{"txn": 33, "card": "10000002", "amount_fen": 250, "ts": 1_795_000_030}]
            assert await client.offline_upload(later) == {"accepted": [33], "rejected": []}  # held by the agent
            assert world.cloud.state.cards["10000002"] == 10_000
            world.cloud.down = False
            await eventually(lambda: world.agent.store.offline_counts().get("pending", 0) == 0)
            assert world.cloud.state.cards == {"10000001": 9880, "10000002": 9750, "10000003": 500}
            assert len(world.cloud.booked()) == 2

    run(scenario)


def test_offline_records_survive_a_restart_and_upload_after_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            world.cloud.down = True
            assert (await client.card_pay(40, "10000001", 500))["offline"] is True
            await world.restart()
            assert world.agent.store.offline_counts() == {"pending": 1}
            world.cloud.down = False
            await eventually(lambda: world.agent.store.offline_counts() == {"accepted": 1})
            assert world.cloud.state.cards["10000001"] == 9500

    run(scenario)


def test_blacklist_changes_are_pushed_and_the_whole_list_after_login(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            world.cloud.report_lost("10000002")
            push = await client.next_push(Command.BLACKLIST)
            assert push.body == {"ver": 1, "full": True, "add": ["10000002"], "remove": []}
            await client.close()
            again = await world.terminal("T0001")
            push = await again.next_push(Command.BLACKLIST)
            assert (push.body["ver"], push.body["full"], push.body["add"]) == (1, True, ["10000002"])

    run(scenario)


def test_long_blacklist_is_split_into_frames() -> None:
    cards = [f"{n:020d}" for n in range(1000)]
    bodies = blacklist_pushes(9, True, cards, [])
    assert len(bodies) > 1 and [b["full"] for b in bodies] == [True] + [False] * (len(bodies) - 1)
    assert [card for b in bodies for card in b["add"]] == cards and {b["ver"] for b in bodies} == {9}
    assert all(len(encode_frame(Frame(0, Command.BLACKLIST, b))) <= 4106 for b in bodies)
