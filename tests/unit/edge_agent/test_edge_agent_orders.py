"""QR orders, payment codes and queries through the agent, and the PAY_RESULT pushes of the feed."""

from __future__ import annotations

import pytest

import asyncio
from pathlib import Path

from edge_agent.protocol import Command

from edge_agent_support import agent_world, eventually, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)


def test_qr_order_paid_reaches_the_screen(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            order = await client.qr_create(101, 1250)
            assert order["ok"] is True and order["qr"].endswith(order["order_id"]) and order["expires_in"] == 300
            world.cloud.pay_order("T0001", 101, "alipay")
            push = await client.next_push(Command.PAY_RESULT)
            assert push.body == {"txn": 101, "order_id": order["order_id"], "status": "PAID", "amount_fen": 1250,
                                 "channel": "alipay", "msg": "支付成功", "voice": "微信收款"}
            await eventually(lambda: world.agent.store.push_state(f"{order['order_id']}:PAID") == "acked")
            assert await client.query(101) == {"txn": 101, "status": "PAID", "amount_fen": 1250}

    run(scenario)


def test_unacknowledged_push_is_resent_and_again_after_login(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001", auto_ack=False)
            order = await client.qr_create(102, 500)
            world.cloud.pay_order("T0001", 102)
            first = await client.next_push(Command.PAY_RESULT)
            again = await client.next_push(Command.PAY_RESULT, timeout=2)  # resent after push_resend_s
            assert (again.seq, again.body) == (first.seq, first.body)
            await client.close()
            client = await world.terminal("T0001")  # a new login: pushed again, acked this time
            push = await client.next_push(Command.PAY_RESULT)
            assert push.body["order_id"] == order["order_id"]
            await eventually(lambda: world.agent.store.push_state(f"{order['order_id']}:PAID") == "acked")
            await client.close()
            client = await world.terminal("T0001")
            await asyncio.sleep(0.3)
            assert client.pushes.empty()  # acknowledged pushes are done

    run(scenario)


def test_push_waits_for_an_offline_terminal_and_feed_repeats_are_dropped(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0002")
            await client.qr_create(103, 700)
            await client.close()
            world.cloud.pay_order("T0002", 103)
            event = world.cloud.state.events[-1][1]
            world.cloud.state.events.append(("999999999999999", dict(event)))  # the feed repeats itself
            await eventually(lambda: world.cloud.state.calls["/edge/v1/events"] > 3 and
                             world.agent.store.push_state(event["event_id"]) == "pending")
            client = await world.terminal("T0002")
            push = await client.next_push(Command.PAY_RESULT)
            assert push.body["txn"] == 103
            await eventually(lambda: world.agent.store.push_state(event["event_id"]) == "acked")
            await asyncio.sleep(0.3)
            assert client.pushes.empty()

    run(scenario)


def test_cancel_closes_and_pushes_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            await client.qr_create(104, 300)
            assert await client.qr_cancel(104) == {"txn": 104, "ok": True, "status": "CLOSED"}
            push = await client.next_push(Command.PAY_RESULT)
            assert (push.body["status"], push.body["msg"], push.body["voice"]) == ("CLOSED", "订单已关闭", "")
            assert await client.qr_cancel(999) == {"txn": 999, "ok": False, "status": "UNKNOWN"}

    run(scenario)


def test_scan_pay_paid_failed_and_query_unknown(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            paid = await client.scan_pay(105, 990, "134567890123456789")
            assert (paid["ok"], paid["status"], paid["code"], paid["msg"]) == (True, "PAID", "OK", "支付成功")
            failed = await client.scan_pay(106, 990, "134567890123450000")
            assert (failed["ok"], failed["status"]) == (False, "FAILED")
            assert await client.query(107) == {"txn": 107, "status": "UNKNOWN", "amount_fen": None}
            world.cloud.down = True
            unknown = await client.scan_pay(108, 990, "284567890123456789")
            assert (unknown["ok"], unknown["status"], unknown["code"]) == (False, "PAYING", "ERR012")
            world.cloud.down = False
            assert (await client.scan_pay(108, 990, "284567890123456789"))["status"] == "PAID"

    run(scenario)
