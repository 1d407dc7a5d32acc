"""Uncertain refusals settled with the real API (LocalDevServer on loopback, moto): a card payment whose
online attempt landed but answered too late is refused offline, then voided -> reversed; one whose
request never landed is voided -> never booked, and its original, arriving late, books nothing.
Balances and the card ledger are checked, and `python -m edge_agent --status` shows the outcomes."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from chalicelib.services.card_container import card_services
from edge_agent.__main__ import print_status
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.simulator.client import TerminalClient
from tests.support.card_world import issue_card
from tests.support.edge_client import EdgeTestClient
from tests.support.holding_link import HoldingLink
from tests.support.ledger_invariants import check_card_ledger
from tests.support.waiting import until

CARD = "40000001"
FAST = dict(listen_host="127.0.0.1", listen_port=0, tick_s=0.05, events_poll_s=0.5, status_report_s=1.0,
            keys_refresh_s=30.0, blacklist_poll_s=30.0, params_poll_s=30.0, ack_report_s=0.5,
            upload_interval_s=30.0,  # the void loop runs when the test wakes it, on a settled state
            cloud_backoff_s=0.01, cloud_timeout_s=5.0, card_pay_deadline_s=0.5)


class _Now:
    @staticmethod
    def now() -> float:
        return time.time()


def test_uncertain_refusals_are_voided_in_the_cloud(api_url, http, world, live_container, tmp_path: Path,
                                                    capsys) -> None:  # type: ignore[no-untyped-def]
    terminal_id = sorted(world.terminals)[0]
    cs = card_services(live_container)
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    # No offline payment at this merchant: every offline decision is a refusal (params version 1).
    cs.rules.put_rules(world.merchant_id, {"offline": {"per_payment_max_fen": 0}}, 0, live_container.clock.now())

    def balance() -> int:
        return cs.admin.card(world.merchant_id, CARD).balance_fen

    link = HoldingLink(int(api_url.rsplit(":", 1)[1]))
    config = AgentConfig.from_dict({"agent_id": world.agent_id, "agent_secret": world.agent_secret,
                                    "cloud_url": link.url, "data_dir": str(tmp_path), **FAST})

    async def scenario() -> None:
        agent = await EdgeAgent(config).start()
        try:
            await until(lambda: agent.terminals.get(terminal_id) and agent.params.version_of(terminal_id) == 1)
            assert agent.terminals.limits_for(terminal_id).max_payment_fen == 0
            async with TerminalClient("127.0.0.1", agent.port, terminal_id, world.terminals[terminal_id]) as terminal:
                assert (await terminal.login())["ok"] is True
                link.hold_answers()  # the attempt lands, its answer comes too late
                landed = await terminal.card_pay(1, CARD, 300)
                assert (landed["ok"], landed["code"], landed["offline"]) == (False, "ERR012", True)
                await until(lambda: balance() == 700)  # the cloud did charge the card
                link.release_answers()
                link.swallow_requests()  # the attempt never lands
                lost = await terminal.card_pay(2, CARD, 200)
                assert (lost["ok"], lost["code"], lost["offline"]) == (False, "ERR012", True)
                link.swallow_requests(False)
                assert {(t, x) for t, x, _ in agent.store.uncertain_rows()} == {(terminal_id, 1), (terminal_id, 2)}

                agent.voids.wake()
                await until(lambda: all(row[3] for row in agent.store.uncertain_outcomes()))
                outcomes = {txn: (outcome, detail) for _, txn, _, outcome, detail in agent.store.uncertain_outcomes()}
                assert outcomes == {1: ("reversed", "300 fen given back, balance 1000 fen"), 2: ("never booked", "")}
                assert await agent.voids.resolve_pending() == 0  # settled rows are not asked again
                assert await terminal.card_pay(1, CARD, 300) == landed  # a retransmission: the first answer
        finally:
            await agent.stop()
            link.close()

    asyncio.run(scenario())
    assert balance() == 1_000
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["CARD_PAYMENT"], totals.by_kind["REVERSAL"], totals.payments_booked) == (-300, 300, 1)

    # The swallowed original of txn 2 reaches the cloud after all: refused, nothing booked.
    late = EdgeTestClient(http, world.agent_id, world.agent_secret, _Now).post("/edge/v1/cards/pay", {
        "terminal_id": terminal_id, "txn": 2, "card": CARD, "amount_fen": 200, "ts": int(time.time())})
    body = json.loads(late.body)
    assert (late.status_code, body["ok"], body["code"]) == (200, False, "ERR012")
    assert balance() == 1_000 and check_card_ledger(world.merchant_id).payments_booked == 1

    assert print_status(config) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "uncertain" in line]
    assert len(lines) == 2
    assert f"{terminal_id}/1 " in lines[0] and lines[0].endswith(": reversed (300 fen given back, balance 1000 fen)")
    assert f"{terminal_id}/2 " in lines[1] and lines[1].endswith(": never booked")
