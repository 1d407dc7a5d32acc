"""A terminal speaking protocol.md to the demo edge agent of the local stack, down to the cloud.

LOGIN with the demo key, a card swipe on a demo card, and a QR order paid in the sandbox whose
PAY_RESULT (支付成功) is pushed back to the terminal.
"""
from __future__ import annotations

import asyncio
import time

import httpx

from devstack import demo
from devstack.stack import LocalStack
from edge_agent.protocol.frames import Command
from edge_agent.simulator.client import TerminalClient


def test_terminal_logs_in_swipes_and_gets_pay_result(stack: LocalStack) -> None:
    async def scenario() -> dict:
        for _ in range(50):  # the agent fetches its terminals' keys from the cloud as it starts
            async with TerminalClient("127.0.0.1", stack.ports.edge, "T0002", demo.TERMINALS["T0002"]) as probe:
                if (await probe.login())["ok"]:
                    break
            await asyncio.sleep(0.2)
        async with TerminalClient("127.0.0.1", stack.ports.edge, "T0002", demo.TERMINALS["T0002"]) as terminal:
            login = await terminal.login()
            assert login["ok"] is True, login
            txn = int(time.time() * 1000) % 1_000_000_000
            swipe = await terminal.card_pay(txn, "10000003", 600)
            assert (swipe["ok"], swipe["code"], swipe["balance_fen"], swipe["offline"]) == (
                True, "OK", demo.CARD_BALANCE_FEN - 600, False)
            order = await terminal.qr_create(txn + 1, 880)
            assert order["ok"] is True, order
            paid = await asyncio.to_thread(httpx.post, f"{stack.sandbox.ctx.base_url}/sandbox/scan",
                                           json={"qr": order["qr"], "wallet": "alipay"}, timeout=20)
            assert paid.status_code == 200, paid.text
            while True:  # earlier tests' orders of T0002 are pushed too: find this one's
                push = await terminal.next_push(Command.PAY_RESULT, timeout=20)
                if push.body["order_id"] == order["order_id"]:
                    return push.body

    result = asyncio.run(scenario())
    assert (result["status"], result["amount_fen"], result["channel"], result["msg"]) == ("PAID", 880, "alipay", "支付成功")
    assert result["voice"] == "支付宝收款8.80元"
