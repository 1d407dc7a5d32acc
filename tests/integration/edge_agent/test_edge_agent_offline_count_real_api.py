"""The merchant's per-card daily offline count, from the canteen rules through PARAMS to the edge agent's
offline decisions, against the real API (LocalDevServer on loopback, moto): with the cloud away, a card
pays offline twice and the third swipe is refused; back online, exactly the two are booked, and the
agent's status report (nothing pending any more) is what the cloud keeps for the operators."""
from __future__ import annotations

import asyncio
from pathlib import Path

from chalicelib.services.card_container import card_services
from chalicelib.store.terminals import TerminalLinkStore
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.simulator.client import TerminalClient
from tests.support.card_world import issue_card
from tests.support.holding_link import HoldingLink
from tests.support.ledger_invariants import check_card_ledger
from tests.support.waiting import until

CARD = "40000002"
FAST = dict(listen_host="127.0.0.1", listen_port=0, tick_s=0.05, events_poll_s=0.5, status_report_s=1.0,
            keys_refresh_s=30.0, blacklist_poll_s=30.0, params_poll_s=30.0, ack_report_s=0.5,
            upload_interval_s=0.2, failure_backoff_max_s=0.5, cloud_backoff_s=0.01, cloud_timeout_s=1.0,
            card_pay_deadline_s=0.5,
            offline_limits={"max_payment_fen": 1_000, "max_card_day_fen": 5_000, "max_card_day_count": 5})


def _link_status(merchant_id: str, terminal_id: str) -> tuple[bool, int | None, int | None] | None:
    for status in TerminalLinkStore().merchant_terminals(merchant_id):
        if status.terminal_id == terminal_id and status.status_reported_at:
            return status.online, status.agent_offline_pending, status.terminal_offline_pending
    return None


def test_the_cloud_count_limits_offline_swipes_of_a_card(api_url, world, live_container, tmp_path: Path) -> None:
    terminal_id = sorted(world.terminals)[0]
    cs = card_services(live_container)
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    offline = {"per_payment_max_fen": 500, "per_card_day_max_fen": 900, "max_count": 40, "per_card_day_max_count": 2}
    cs.rules.put_rules(world.merchant_id, {"offline": offline}, 0, live_container.clock.now())

    def balance() -> int:
        return cs.admin.card(world.merchant_id, CARD).balance_fen

    link = HoldingLink(int(api_url.rsplit(":", 1)[1]))
    config = AgentConfig.from_dict({"agent_id": world.agent_id, "agent_secret": world.agent_secret,
                                    "cloud_url": link.url, "data_dir": str(tmp_path), **FAST})

    async def scenario() -> None:
        agent = await EdgeAgent(config).start()
        try:
            await until(lambda: agent.terminals.get(terminal_id) and agent.params.version_of(terminal_id) == 1)
            limits = agent.terminals.limits_for(terminal_id)
            assert (limits.max_payment_fen, limits.max_card_day_fen, limits.max_card_day_count,
                    limits.max_terminal_pending) == (500, 900, 2, 40)
            async with TerminalClient("127.0.0.1", agent.port, terminal_id, world.terminals[terminal_id]) as terminal:
                assert (await terminal.login())["ok"] is True
                link.swallow_requests()  # the cloud is away
                answers = [await terminal.card_pay(txn, CARD, 100) for txn in (1, 2, 3)]
                assert [(a["ok"], a["code"], a["offline"]) for a in answers] == [
                    (True, "OK", True), (True, "OK", True), (False, "ERR012", True)]
                assert balance() == 1_000  # nothing reached the cloud
                link.swallow_requests(False)
                await until(lambda: agent.store.offline_counts() == {"accepted": 2})
                agent.voids.wake()  # the refused third swipe may have landed: the cloud says it did not
                await until(lambda: [row[3] for row in agent.store.uncertain_outcomes()] == ["never booked"])
                # The agent's status report carries the counts; the cloud keeps them for the operators.
                await until(lambda: _link_status(world.merchant_id, terminal_id) == (True, 0, 0))
        finally:
            await agent.stop()
            link.close()

    asyncio.run(scenario())
    assert balance() == 800
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["CARD_PAYMENT_OFFLINE"], totals.payments_booked) == (-200, 2)
