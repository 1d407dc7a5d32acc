"""The edge agent talking real HTTP to the real API (chalice's LocalDevServer on loopback, DynamoDB and
KMS in moto), and terminals talking protocol.md to the agent: LOGIN with the keys the cloud sent in
boxes, a QR order paid by a notification and pushed as PAY_RESULT, a payment code, QUERY, and the
online status written back to DynamoDB."""
from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from chalicelib.domain.orders import Wallet
from chalicelib.store.models import TerminalModel
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.protocol import Command
from edge_agent.simulator.client import TerminalClient
from tests.support.state import ledger_of_order, snapshot

FAST = dict(listen_host="127.0.0.1", listen_port=0, tick_s=0.05, events_poll_s=0.1, status_report_s=0.2,
            keys_refresh_s=30.0, blacklist_poll_s=30.0, upload_interval_s=0.2, cloud_backoff_s=0.01,
            cloud_timeout_s=10.0)


async def _until(check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not (value := check()):
            await asyncio.sleep(0.05)
        return value


def test_agent_against_the_real_api(api_url, world, live_container, fake_channels, tmp_path: Path) -> None:
    terminal_id = sorted(world.terminals)[0]

    async def scenario() -> None:
        config = AgentConfig.from_dict({"agent_id": world.agent_id, "agent_secret": world.agent_secret,
                                        "cloud_url": api_url, "data_dir": str(tmp_path), **FAST})
        agent = await EdgeAgent(config).start()
        try:
            await _until(lambda: agent.terminals.get(terminal_id))
            assert agent.terminals.merchant_name.startswith("Canteen ")
            async with TerminalClient("127.0.0.1", agent.port, terminal_id, world.terminals[terminal_id]) as terminal:
                assert (await terminal.login())["ok"] is True

                order = await terminal.qr_create(1, 1250)
                assert order["ok"] is True and order["qr"] == f"http://127.0.0.1:8000/pay/{order['order_id']}"
                assert await terminal.qr_create(1, 1250) == order  # the agent's stored answer
                # The consumer opens the QR in WeChat and pays; WeChat Pay notifies the cloud.
                live_container.order_service.open_in_wallet(order["order_id"], Wallet.WECHAT)
                channel = fake_channels.by_wallet["wechat"]
                channel.pay(order["order_id"])
                headers, body = channel.notification(order["order_id"])
                async with httpx.AsyncClient() as platform:
                    notified = await platform.post(f"{api_url}/notify/wechat_v2/{world.merchant_id}",
                                                   headers=headers, content=body)
                assert notified.status_code == 200
                push = await terminal.next_push(Command.PAY_RESULT, timeout=5)
                assert push.body["order_id"] == order["order_id"] and push.body["status"] == "PAID"
                assert (push.body["txn"], push.body["amount_fen"], push.body["channel"]) == (1, 1250, "wechat")
                assert push.body["msg"] == "支付成功"
                assert await terminal.query(1) == {"txn": 1, "status": "PAID", "amount_fen": 1250}

                paid = await terminal.scan_pay(2, 990, "134567890123456789")
                assert (paid["ok"], paid["status"]) == (True, "PAID")

                await _until(lambda: TerminalModel.get(terminal_id, consistent_read=True).online)
        finally:
            await agent.stop()

    asyncio.run(scenario())

    orders = {o["txn"]: o for o in snapshot(terminal_id)["orders"]}
    assert sorted(orders) == [1, 2] and {o["status"] for o in orders.values()} == {"PAID"}
    assert [e["amount_fen"] for e in ledger_of_order(orders[1]["order_id"])] == [1250]
    assert [e["amount_fen"] for e in ledger_of_order(orders[2]["order_id"])] == [990]
    assert snapshot(terminal_id)["txn_dedupe"] == [f"txn#{terminal_id}#1", f"txn#{terminal_id}#2"]
    item = TerminalModel.get(terminal_id, consistent_read=True)
    assert item.last_seen_at > 0
