"""The cloud goes away: a terminal keeps paying offline through the edge agent within its limits;
the cloud comes back, the records upload, and balances and the ledger are exactly right."""
from __future__ import annotations

import asyncio
import time

from devstack import demo
from devstack.stack import LocalStack
from edge_agent.config import AgentConfig
from edge_agent.simulator.client import TerminalClient
from edge_agent.thread import AgentThread
from tests.support.ledger_invariants import check_card_ledger
from tests.e2e.conftest import eventually
from tests.support.tcp_proxy import CuttableProxy

CARD = "10000004"


def card_balance(stack: LocalStack) -> int:
    from chalicelib.services.card_container import card_services

    return card_services(stack.container).admin.card(demo.MERCHANT_ID, CARD).balance_fen


def test_offline_payments_during_an_outage_are_booked_exactly_once(stack: LocalStack, tmp_path) -> None:
    link = CuttableProxy(stack.ports.api)  # this agent reaches the cloud only through `link`
    agent = AgentThread(AgentConfig(agent_id=demo.AGENT_ID, agent_secret=demo.AGENT_SECRET,
                                    cloud_url=f"http://127.0.0.1:{link.port}", listen_host="127.0.0.1",
                                    listen_port=0, data_dir=str(tmp_path), upload_interval_s=0.5,
                                    cloud_attempts=1)).start()
    try:
        run_outage(stack, agent.port, link)
    finally:
        agent.stop()


def run_outage(stack: LocalStack, agent_port: int, link: CuttableProxy) -> None:
    before = card_balance(stack)
    base_txn = int(time.time() * 1000) % 1_000_000_000

    async def pay_during_outage() -> list[dict]:
        for _ in range(100):  # the new agent fetches its terminals' keys and the blacklist first
            async with TerminalClient("127.0.0.1", agent_port, "T0001", demo.TERMINALS["T0001"]) as probe:
                login = await probe.login()
                if login["ok"] and login["blacklist_ver"] >= 1:
                    break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the agent never got its keys and blacklist")
        async with TerminalClient("127.0.0.1", agent_port, "T0001", demo.TERMINALS["T0001"]) as terminal:
            assert (await terminal.login())["ok"]
            link.cut()  # the cloud goes away
            answers = [await terminal.card_pay(base_txn + n, CARD, 300) for n in range(3)]
            over_limit = await terminal.card_pay(base_txn + 3, CARD, 2_500)  # above the offline per-payment limit
            lost = await terminal.card_pay(base_txn + 4, demo.LOST_CARD, 100)  # blacklisted: never accepted offline
            repeat = await terminal.card_pay(base_txn, CARD, 300)  # a retransmission gets the first answer
            return answers + [over_limit, lost, repeat]

    answers = asyncio.run(pay_during_outage())
    offline, over_limit, lost, repeat = answers[:3], answers[3], answers[4], answers[5]
    assert [(a["ok"], a["offline"]) for a in offline] == [(True, True)] * 3
    assert over_limit["ok"] is False and lost["ok"] is False
    assert lost["code"] == "ERR008"
    assert repeat == offline[0]
    assert card_balance(stack) == before  # nothing reached the cloud yet
    link.restore()  # the cloud comes back
    eventually(lambda: card_balance(stack) == before - 900, 30, "the offline upload", interval_s=0.2)
    time.sleep(3)  # another upload round changes nothing more
    assert card_balance(stack) == before - 900
    totals = check_card_ledger(demo.MERCHANT_ID)
    assert totals.by_kind["CARD_PAYMENT_OFFLINE"] <= -900
