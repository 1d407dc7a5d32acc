"""LOGIN per protocol.md against the keys the cloud sent (cached for when it is away)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge_agent.protocol import Command
from edge_agent.simulator.client import NakError, TerminalClient

from edge_agent_support import agent_world, eventually, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)


def test_login_answer(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001", login=False)
            asked_at = int(world.agent.clock())
            answer = await client.login()
            assert answer["ok"] is True and answer["merchant_name"] == "Stub Canteen"
            assert asked_at <= answer["server_time"] <= world.agent.clock()
            assert answer["params_ver"] == 0 and answer["blacklist_ver"] == 0

    run(scenario)


@pytest.mark.parametrize("fault", ["wrong_key", "stale_ts", "future_ts", "unknown_tid"])
def test_refused_login_closes_the_link(tmp_path: Path, fault: str) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            tid = "T9999" if fault == "unknown_tid" else "T0001"
            client = await world.terminal(tid, login=False)
            now = int(world.agent.clock())
            ts = {"stale_ts": now - 301, "future_ts": now + 301}.get(fault, now)
            answer = await client.login(ts=ts, key="not-the-key" if fault == "wrong_key" else None)
            assert answer == {"ok": False, "code": "AUTH_FAILED"}
            await asyncio.wait_for(client.closed.wait(), 2)
            assert world.agent.server.connection_of(tid) is None

    run(scenario)


def test_nonce_cannot_be_replayed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            first = await world.terminal("T0001", login=False)
            now = int(world.agent.clock())
            assert (await first.login(ts=now, nonce="n-1"))["ok"] is True
            replay = await world.terminal("T0001", login=False)
            assert (await replay.login(ts=now, nonce="n-1"))["code"] == "AUTH_FAILED"
            other = await world.terminal("T0002", login=False)  # nonces are per terminal
            assert (await other.login(ts=now, nonce="n-1"))["ok"] is True

    run(scenario)


def test_requests_before_login_get_nak(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001", login=False)
            with pytest.raises(NakError) as caught:
                await client.card_pay(1, "10000001", 100)
            assert caught.value.code == "NOT_LOGGED_IN"
            assert world.cloud.state.payments == {}
            assert (await client.login())["ok"] is True  # the link stays usable

    run(scenario)


def test_new_login_replaces_the_old_link(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            old = await world.terminal("T0001")
            new = await world.terminal("T0001")
            await asyncio.wait_for(old.closed.wait(), 2)
            assert (await new.heartbeat())["server_time"] > 0

    run(scenario)


def test_cached_keys_serve_logins_while_the_cloud_is_away(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            await world.terminal("T0001")
            world.cloud.down = True
            await world.restart()  # the restart waits for T0001's key: it comes from disk
            assert not world.agent.terminals.loaded_from_cloud
            client = await world.terminal("T0001")
            assert (await client.heartbeat())["server_time"] > 0

    run(scenario)


def test_terminal_added_in_the_cloud_logs_in_after_a_refresh(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, keys_refresh_s=60.0) as world:
            world.cloud.state.terminals["T0042"] = "key-T0042"
            client = TerminalClient("127.0.0.1", world.agent.port, "T0042", "key-T0042")
            await client.connect()
            world.clients.append(client)
            assert (await client.login())["ok"] is False  # unknown: refused, and a refresh starts
            await eventually(lambda: world.agent.terminals.get("T0042"))
            again = TerminalClient("127.0.0.1", world.agent.port, "T0042", "key-T0042")
            await again.connect()
            world.clients.append(again)
            assert (await again.login())["ok"] is True

    run(scenario)


def test_login_with_a_skewed_clock_gets_time_set(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001", login=False)
            asked_at = int(world.agent.clock())
            assert (await client.login(ts=asked_at - 60))["ok"] is True
            push = await client.next_push(Command.TIME_SET)
            assert asked_at <= push.body["server_time"] <= world.agent.clock()

    run(scenario)
