"""The TCP link: heartbeats, timers that close slow or silent links, the connection cap, bad frames,
flooding, and a clean shutdown that keeps the answers of requests in progress."""

from __future__ import annotations

import pytest

import asyncio
import contextlib
from pathlib import Path

from edge_agent.protocol import Command, Frame, encode_frame
from edge_agent.simulator.client import TerminalClient
from edge_agent.simulator.stub_cloud import StubCloud, StubCloudThread
from edge_agent.status import StatusReporter
from edge_agent.thread import AgentThread

from edge_agent_support import AGENT_ID, SECRET, TERMINALS, agent_world, config_for, eventually, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)


def test_heartbeat_and_time_set_on_drift(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            now = int(world.agent.clock())
            answer = await client.heartbeat(offline_pending=2, ts=now)
            assert set(answer) == {"server_time", "params_ver", "blacklist_ver"}
            assert client.pushes.empty()
            await client.heartbeat(ts=now + 30)
            push = await client.next_push(Command.TIME_SET)
            assert now <= push.body["server_time"] <= world.agent.clock()

    run(scenario)


def test_silent_and_unlogged_links_are_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, idle_timeout_s=0.3, login_timeout_s=0.3) as world:
            silent = await world.terminal("T0001")
            never_logs_in = await world.terminal("T0002", login=False)
            busy = await world.terminal("T0003")
            loop = asyncio.get_running_loop()
            until = loop.time() + 0.8
            while loop.time() < until:  # keeps talking: stays open
                await busy.heartbeat()
                await asyncio.sleep(0.1)
            await asyncio.wait_for(silent.closed.wait(), 2)
            await asyncio.wait_for(never_logs_in.closed.wait(), 2)
            assert not busy.closed.is_set()

    run(scenario)


def test_incomplete_frame_is_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, incomplete_frame_timeout_s=0.3) as world:
            client = await world.terminal("T0001")
            frame = encode_frame(Frame(9, Command.HEARTBEAT, {"ts": 1, "offline_pending": 0}))
            client.send_raw(frame[:6])  # a slow sender that never finishes its frame
            await asyncio.wait_for(client.closed.wait(), 3)

    run(scenario)


def test_bad_frames_are_naked_and_eight_in_a_row_close(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            client.send_raw(encode_frame(Frame(200, Command.CARD_PAY, {"txn": "1", "card": "c", "amount_fen": 1, "ts": 1})))
            client.send_raw(encode_frame(Frame(201, 0x33, {})))
            await eventually(lambda: len(client.naks) == 2)
            assert [(n.seq, n.code) for n in client.naks] == [(200, "BAD_FIELD"), (201, "UNKNOWN_CMD")]
            assert (await client.heartbeat())["server_time"] > 0  # still open, the count starts again
            with_crc_broken = bytearray(encode_frame(Frame(202, Command.HEARTBEAT, {})))
            with_crc_broken[-2] ^= 0xFF
            for _ in range(8):
                client.send_raw(bytes(with_crc_broken))
            await asyncio.wait_for(client.closed.wait(), 2)
            assert [n.code for n in client.naks[2:]] == ["BAD_CRC"] * 8
            assert world.cloud.state.payments == {}

    run(scenario)


def test_connection_cap(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, max_connections=2) as world:
            await world.terminal("T0001")
            await world.terminal("T0002")
            third = await world.terminal("T0003", login=False)
            await asyncio.wait_for(third.closed.wait(), 2)
            assert world.agent.server.refused_connections == 1
            assert world.agent.server.connection_count == 2

    run(scenario)


def test_flooding_terminal_is_slowed_not_buffered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, max_inflight_per_connection=2) as world:
            world.cloud.hang_s = 0.05
            client = await world.terminal("T0001")
            answers = await asyncio.gather(*(client.qr_create(txn, 100) for txn in range(1, 21)))
            assert all(a["ok"] for a in answers) and len(world.cloud.state.orders) == 20
            assert world.agent.server.connection_of("T0001").inflight == 0

    run(scenario)


def test_clean_shutdown_keeps_the_answer_in_progress(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            world.cloud.hang_s = 0.3
            client = await world.terminal("T0001")
            pending = asyncio.ensure_future(client.qr_create(7, 990))
            await eventually(lambda: world.agent.once.in_progress)
            await world.restart()
            world.cloud.hang_s = 0.0
            stored = world.agent.store.get_answer("T0001", 7)
            assert stored is not None and stored.body["ok"] is True
            again = await world.terminal("T0001")
            assert await again.qr_create(7, 990) == stored.body
            assert world.cloud.state.calls["/edge/v1/orders/qr"] == 1
            with contextlib.suppress(ConnectionError):  # its link was closed by the restart
                await pending

    run(scenario)


def test_online_status_is_reported_to_the_cloud(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            seen_from = int(world.agent.clock())
            client = await world.terminal("T0002")
            await client.heartbeat(offline_pending=3)

            def status(online: bool) -> dict | None:
                for report in reversed(world.cloud.state.heartbeats):
                    row = next(r for r in report["terminals"] if r["terminal_id"] == "T0002")
                    return row if row["online"] is online else None
                return None

            row = await eventually(lambda: status(True))
            assert row["terminal_offline_pending"] == 3 and row["offline_pending"] == 0
            assert seen_from <= row["last_seen"] <= world.agent.clock()  # when it was seen, not a tolerance
            await client.close()
            assert (await eventually(lambda: status(False)))["last_seen"] >= row["last_seen"]

    run(scenario)


def test_status_reports_carry_their_time_in_increasing_milliseconds(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            since_ms = int(world.agent.clock() * 1000)
            await eventually(lambda: len(world.cloud.state.heartbeats) >= 3)
            times = [report["reported_at"] for report in world.cloud.state.heartbeats]
            assert all(type(t) is int for t in times)
            assert since_ms <= times[0] and times[-1] <= world.agent.clock() * 1000
            assert times == sorted(set(times))  # strictly increasing

    run(scenario)


def test_status_report_time_keeps_increasing_when_the_clock_steps_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            agent = world.agent
            now = [1_795_000_000.5]
            reporter = StatusReporter(agent.config, agent.cloud, agent.server, agent.terminals, agent.store,
                                      clock=lambda: now[0])
            first = reporter.report()
            assert first["reported_at"] == 1_795_000_000_500
            assert [t["terminal_id"] for t in first["terminals"]] == sorted(TERMINALS)
            now[0] -= 60  # NTP steps the clock back a minute
            assert reporter.report()["reported_at"] == 1_795_000_000_501
            now[0] += 120
            assert reporter.report()["reported_at"] == 1_795_000_060_500

    run(scenario)


def test_agent_in_a_thread(tmp_path: Path) -> None:
    cloud = StubCloudThread(StubCloud(AGENT_ID, SECRET, TERMINALS)).start()
    agent = AgentThread(config_for(cloud.cloud.url, tmp_path)).start()
    try:
        async def login() -> None:
            async with asyncio.timeout(10):
                while True:
                    client = TerminalClient("127.0.0.1", agent.port, "T0001", TERMINALS["T0001"])
                    async with client:
                        if (await client.login())["ok"]:
                            return
                    await asyncio.sleep(0.05)

        asyncio.run(login())
    finally:
        agent.stop()
        cloud.stop()
