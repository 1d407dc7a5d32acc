"""The edge agent against the real API (LocalDevServer on loopback, moto): a terminal's PARAMS from the
merchant's canteen rules (version in LOGIN, pushed, offline limits used), and a terminal's blacklist
ack written back to the cloud, where the console reads who is behind."""
from __future__ import annotations

import asyncio
from pathlib import Path

from chalicelib.services.card_container import card_services
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.protocol import Command
from edge_agent.simulator.client import TerminalClient
from tests.support.card_world import issue_card
from tests.support.waiting import until

FAST = dict(listen_host="127.0.0.1", listen_port=0, tick_s=0.05, events_poll_s=0.5, status_report_s=1.0,
            keys_refresh_s=30.0, blacklist_poll_s=0.2, params_poll_s=30.0, ack_report_s=0.1,
            upload_interval_s=0.5, cloud_backoff_s=0.01, cloud_timeout_s=10.0)


def test_params_and_blacklist_acks_against_the_real_api(api_url, world, live_container, tmp_path: Path) -> None:
    terminal_id = sorted(world.terminals)[0]
    cs = card_services(live_container)
    issue_card(cs, world.merchant_id, "30000001")
    cs.admin.report_lost(world.merchant_id, "30000001")  # blacklist version 1
    offline = {"per_payment_max_fen": 300, "per_card_day_max_fen": 900, "max_count": 40}
    cs.rules.put_rules(world.merchant_id, {"offline": offline}, 0, live_container.clock.now())  # params version 1

    async def scenario() -> None:
        config = AgentConfig.from_dict({"agent_id": world.agent_id, "agent_secret": world.agent_secret,
                                        "cloud_url": api_url, "data_dir": str(tmp_path), **FAST})
        agent = await EdgeAgent(config).start()
        try:
            await until(lambda: agent.params.version_of(terminal_id) == 1 and agent.blacklist.version == 1)
            limits = agent.terminals.limits_for(terminal_id)
            assert (limits.max_payment_fen, limits.max_card_day_fen, limits.max_terminal_pending) == (300, 900, 40)
            async with TerminalClient("127.0.0.1", agent.port, terminal_id, world.terminals[terminal_id]) as terminal:
                answer = await terminal.login()
                assert (answer["ok"], answer["params_ver"], answer["blacklist_ver"]) == (True, 1, 1)
                # Pushed after LOGIN in this order: the blacklist, then the params.
                blacklist = await terminal.next_push(Command.BLACKLIST)  # acked by the client
                assert blacklist.body["add"] == ["30000001"]
                params = await terminal.next_push(Command.PARAMS)
                assert params.body["ver"] == 1 and params.body["offline"] == offline
                assert params.body["mode"] == "free"
                await until(lambda: cs.blacklist.acks(world.merchant_id) == {terminal_id: 1})
                await until(lambda: not agent.store.unreported_blacklist_acks())
        finally:
            await agent.stop()

    asyncio.run(scenario())
