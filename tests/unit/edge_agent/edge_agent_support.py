"""A stub cloud on loopback and an edge agent with short timers, for one test's asyncio.run().

No pytest-asyncio here: each test runs its scenario with ``asyncio.run`` and uses
``async with agent_world(tmp_path) as world``. Timers are short (config, never sleeps inside the
code under test), and waits are for conditions (:func:`eventually`), never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent import event_loop
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.simulator.client import TerminalClient
from edge_agent.simulator.stub_cloud import StubCloud

AGENT_ID = "E-TEST"
SECRET = "test-agent-secret"
TERMINALS = {"T0001": "key-T0001", "T0002": "key-T0002", "T0003": "key-T0003"}
CARDS = {"10000001": 10_000, "10000002": 10_000, "10000003": 500}

FAST = dict(
    listen_host="127.0.0.1", listen_port=0, tick_s=0.05, push_resend_s=0.3, events_poll_s=0.05,
    upload_interval_s=0.05, status_report_s=0.2, keys_refresh_s=0.5, unknown_terminal_refresh_s=0.1,
    blacklist_poll_s=0.1, params_poll_s=0.1, ack_report_s=0.05, cloud_backoff_s=0.01, cloud_backoff_max_s=0.05,
    cloud_timeout_s=2.0, cloud_connect_timeout_s=1.0, card_pay_deadline_s=0.25, offline_upload_deadline_s=0.5,
    failure_backoff_max_s=0.1,
)


def config_for(cloud_url: str, data_dir: Path, **changes: Any) -> AgentConfig:
    return AgentConfig.from_dict({"agent_id": AGENT_ID, "agent_secret": SECRET, "cloud_url": cloud_url,
                                  "data_dir": str(data_dir), **FAST, **changes})


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Wait until ``check()`` is truthy (returns it); fails the test after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if value:
                return value
            await asyncio.sleep(interval)


@dataclass
class World:
    cloud: StubCloud
    agent: EdgeAgent
    data_dir: Path
    clients: list[TerminalClient] = field(default_factory=list)

    async def terminal(self, tid: str = "T0001", *, login: bool = True, **options: Any) -> TerminalClient:
        client = TerminalClient("127.0.0.1", self.agent.port, tid, TERMINALS.get(tid, "no-key"), **options)
        await client.connect()
        self.clients.append(client)
        if login:
            answer = await client.login()
            assert answer["ok"] is True, answer
        return client

    async def restart(self, **changes: Any) -> None:
        """Stop the agent (cleanly) and start a new one on the same data directory."""
        for client in self.clients:
            await client.close()
        self.clients.clear()
        await self.agent.stop()
        self.agent = await EdgeAgent(config_for(self.cloud.url, self.data_dir, **changes)).start()
        await eventually(lambda: self.agent.terminals.get("T0001"))


@contextlib.asynccontextmanager
async def agent_world(tmp_path: Path, *, wait_keys: bool = True, **changes: Any) -> AsyncIterator[World]:
    cloud = await StubCloud(AGENT_ID, SECRET, TERMINALS).start()
    cloud.state.cards = dict(CARDS)
    agent = await EdgeAgent(config_for(cloud.url, tmp_path, **changes)).start()
    world = World(cloud, agent, tmp_path)
    try:
        if wait_keys:
            await eventually(lambda: world.agent.terminals.get("T0001"))
        yield world
    finally:
        for client in world.clients:
            await client.close()
        await world.agent.stop()
        await cloud.stop()


# The event loop that run() uses: the standard one, or uvloop for a test marked both_loops (its
# second run; see conftest.py). A module global, since the scenarios call run() themselves.
LOOP = {"choice": "asyncio"}


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    event_loop.run(scenario(), LOOP["choice"])
