"""PARAMS from the cloud: stored, answered in LOGIN/HEARTBEAT, pushed on change until acked, and the
offline limits they carry used for offline decisions (also after a restart with the cloud away).
Blacklist acks of the terminals reported to the cloud, kept on disk while it is away."""
from __future__ import annotations

import pytest

from pathlib import Path

from edge_agent.protocol import Command

from edge_agent_support import agent_world, eventually, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)

LIMITS = {"max_payment_fen": 1000, "max_card_day_fen": 5000, "max_card_day_count": 5, "max_terminal_pending": 50}


def test_params_version_in_login_and_heartbeat_and_pushed_on_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            world.cloud.set_params("T0001", mode="fixed", fixed_amount_fen=1200)
            await eventually(lambda: world.agent.params.version_of("T0001") == 1)
            client = await world.terminal("T0001", login=False, auto_ack=False)
            answer = await client.login()
            assert (answer["ok"], answer["params_ver"]) == (True, 1)
            first = await client.next_push(Command.PARAMS)
            assert first.body == {"ver": 1, "mode": "fixed", "fixed_amount_fen": 1200}
            again = await client.next_push(Command.PARAMS, timeout=2)  # not acked: resent, same frame
            assert (again.seq, again.body) == (first.seq, first.body)
            client.ack(again)
            world.cloud.set_params("T0001", fixed_amount_fen=1500)
            changed = await client.next_push(Command.PARAMS)
            while changed.seq == first.seq:  # a resend of the first already on its way
                changed = await client.next_push(Command.PARAMS)
            assert changed.body == {"ver": 2, "mode": "fixed", "fixed_amount_fen": 1500}
            client.ack(changed)
            assert (await client.heartbeat())["params_ver"] == 2
            conn = world.agent.server.connection_of("T0001")
            assert conn is not None
            await eventually(lambda: not conn.session.unacked_pushes())
            other = await world.terminal("T0002")  # version 2 too, settings of its own (none)
            await eventually(lambda: world.agent.params.version_of("T0002") == 2)
            assert (await other.heartbeat())["params_ver"] == 2
            assert world.agent.params.params_of("T0002") == {"ver": 2, "mode": "free"}

    run(scenario)


def test_offline_limits_come_from_params_and_survive_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=LIMITS) as world:
            world.cloud.set_params("T0001", offline={"per_payment_max_fen": 300, "per_card_day_max_fen": 5000,
                                                     "max_count": 200})
            await eventually(lambda: world.agent.params.version_of("T0001") == 1)
            limits = world.agent.terminals.limits_for("T0001")
            assert (limits.max_payment_fen, limits.max_terminal_pending, limits.max_card_day_count) == (300, 200, 5)
            world.cloud.down = True
            one, two = await world.terminal("T0001"), await world.terminal("T0002")
            assert (await one.card_pay(1, "10000001", 400))["code"] == "ERR012"  # over the params' 300
            assert (await two.card_pay(2, "10000001", 400))["code"] == "OK"  # no params: the config's 1000
            assert (await one.card_pay(3, "10000001", 300))["code"] == "OK"
            await world.restart(offline_limits=LIMITS)  # the cloud is still away
            one = await world.terminal("T0001")
            assert (await one.heartbeat())["params_ver"] == 1  # from the store
            assert (await one.card_pay(4, "10000002", 400))["code"] == "ERR012"
            assert world.cloud.booked() == []
            assert world.agent.store.offline_counts() == {"pending": 2}

    run(scenario)


def test_blacklist_acks_are_reported_to_the_cloud_also_after_it_was_away(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            world.cloud.report_lost("10000002")
            await eventually(lambda: world.agent.blacklist.version == 1)
            client = await world.terminal("T0001", auto_ack=False)
            push = await client.next_push(Command.BLACKLIST)
            world.cloud.down = True
            client.ack(push)
            await eventually(lambda: world.agent.store.unreported_blacklist_acks() == [("T0001", 1)])
            world.cloud.down = False
            await eventually(lambda: world.cloud.state.blacklist_acks)
            await eventually(lambda: not world.agent.store.unreported_blacklist_acks())
            assert world.cloud.state.blacklist_acks == [("T0001", 1)]  # reported once

    run(scenario)


def test_a_blacklist_in_several_pushes_is_reported_once_all_are_acked(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            for n in range(500):  # about 5 KB of card numbers: more than one frame
                world.cloud.state.lost_cards.add(f"{20000000 + n}")
            world.cloud.state.blacklist_version = 1
            await eventually(lambda: world.agent.blacklist.version == 1)
            client = await world.terminal("T0001", auto_ack=False)
            first, second = await client.next_push(Command.BLACKLIST), await client.next_push(Command.BLACKLIST)
            assert (first.body["ver"], first.body["full"]) == (1, True)
            assert (second.body["ver"], second.body["full"]) == (1, False)
            client.ack(first)
            await client.heartbeat()  # the ack is handled before this answer
            assert world.agent.blacklist_acks.taken == 0  # half a list is not "holds version 1"
            client.ack(second)
            await eventually(lambda: world.cloud.state.blacklist_acks == [("T0001", 1)])
            assert world.agent.blacklist_acks.taken == 1

    run(scenario)


def test_a_refused_params_fetch_keeps_what_is_stored(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            world.cloud.set_params("T0001", mode="fixed", fixed_amount_fen=800)
            await eventually(lambda: world.agent.params.version_of("T0001") == 1)
            del world.cloud.state.terminals["T0001"]  # the cloud now answers 404 for it
            world.cloud.set_params("T0002", mode="fixed", fixed_amount_fen=900)
            assert await world.agent.params.fetch("T0001") is False
            await eventually(lambda: world.agent.params.version_of("T0002") == 2)  # the others go on
            assert world.agent.params.params_of("T0001") == {"ver": 1, "mode": "fixed", "fixed_amount_fen": 800}

    run(scenario)
