"""A repeated (tid, txn) gets the first answer, during the first request, later, and after a
restart; a txn reused for another request is refused and changes nothing."""

from __future__ import annotations

import pytest

from pathlib import Path

from edge_agent_support import agent_world, eventually, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)

PAY = "/edge/v1/cards/pay"


def test_repeat_gets_the_first_answer_and_charges_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            first = await client.card_pay(11, "10000001", 250)
            assert first["ok"] is True and first["balance_fen"] == 9750 and first["offline"] is False
            assert await client.card_pay(11, "10000001", 250) == first
            assert world.cloud.state.calls[PAY] == 1
            assert world.cloud.state.cards["10000001"] == 9750

    run(scenario)


def test_retransmission_during_the_first_request_waits_for_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            world.cloud.hang_s = 0.4
            client = await world.terminal("T0001", retransmit_s=0.1)  # resends the frame 3 times meanwhile
            answer = await client.qr_create(12, 800)
            assert answer["ok"] is True
            assert world.cloud.state.calls["/edge/v1/orders/qr"] == 1
            assert len(world.cloud.state.orders) == 1

    run(scenario)


def test_card_pay_resent_during_the_first_attempt_gets_its_answer_and_charges_once(tmp_path: Path) -> None:
    """Repeats that arrive while the first CARD_PAY is with the cloud wait for it and share its
    answer (ExactlyOnce makes the future they wait on only when the first repeat comes)."""
    async def scenario() -> None:
        async with agent_world(tmp_path, card_pay_deadline_s=0.95) as world:
            world.cloud.hang_s = 0.45
            client = await world.terminal("T0001", retransmit_s=0.1)  # resends the frame ~4 times meanwhile
            answer = await client.card_pay(14, "10000001", 250)
            assert (answer["ok"], answer["offline"], answer["balance_fen"]) == (True, False, 9750)
            assert world.cloud.state.calls[PAY] == 1 and world.cloud.state.cards["10000001"] == 9750
            assert len(world.cloud.booked()) == 1
            assert world.agent.store.get_answer("T0001", 14).body == answer
            assert world.agent.once.in_progress == 0
            world.cloud.hang_s = 0.0
            assert await client.card_pay(14, "10000001", 250) == answer  # later: the stored answer
            assert world.cloud.state.calls[PAY] == 1

    run(scenario)


def test_same_txn_for_another_request_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            first = await client.card_pay(13, "10000001", 250)
            other_amount = await client.card_pay(13, "10000001", 999)
            other_command = await client.qr_create(13, 250)
            assert (other_amount["ok"], other_amount["code"], other_amount["msg"]) == (False, "ERR011", "交易号重复")
            assert (other_command["ok"], other_command["code"]) == (False, "ERR011")
            assert await client.card_pay(13, "10000001", 250) == first
            assert world.cloud.state.calls[PAY] == 1 and world.cloud.state.cards["10000001"] == 9750
            assert len(world.cloud.state.orders) == 0

    run(scenario)


def test_answers_survive_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            card = await client.card_pay(21, "10000002", 300)
            qr = await client.qr_create(22, 1250)
            await world.restart()
            client = await world.terminal("T0001")
            assert await client.card_pay(21, "10000002", 300) == card
            assert await client.qr_create(22, 1250) == qr
            assert world.cloud.state.calls[PAY] == 1 and world.cloud.state.calls["/edge/v1/orders/qr"] == 1
            assert world.cloud.state.cards["10000002"] == 9700

    run(scenario)


def test_answer_lost_on_the_way_back_is_asked_again_not_charged_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, card_pay_deadline_s=0.5) as world:
            world.cloud.drop_after = {PAY}  # the cloud books it, the answer never arrives
            client = await world.terminal("T0001")
            answer = await client.card_pay(31, "10000001", 400)
            # retried within the deadline and refused each time by the lost answer: decided offline
            assert answer["offline"] is True and answer["ok"] is True
            world.cloud.drop_after = set()
            await eventually(lambda: world.agent.store.offline_counts().get("accepted") == 1)
            assert world.cloud.state.cards["10000001"] == 9600  # once, although sent several times
            assert len(world.cloud.booked()) == 1

    run(scenario)


def test_unavailable_cloud_answers_are_not_stored(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            world.cloud.down = True
            refused = await client.qr_create(41, 500)
            assert (refused["ok"], refused["code"], refused["msg"]) == (False, "ERR012", "网络故障")
            assert world.agent.store.get_answer("T0001", 41) is None
            world.cloud.down = False
            assert (await client.qr_create(41, 500))["ok"] is True

    run(scenario)


def test_bad_amount_is_refused_without_calling_the_cloud(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path) as world:
            client = await world.terminal("T0001")
            for cmd_answer in (await client.card_pay(51, "10000001", 0), await client.qr_create(52, -1),
                               await client.scan_pay(53, 0, "134567890123456789")):
                assert cmd_answer["ok"] is False and cmd_answer["code"] == "ERR009"
            assert sum(world.cloud.state.calls[p] for p in (PAY, "/edge/v1/orders/qr", "/edge/v1/orders/scan")) == 0
            assert world.cloud.state.cards["10000001"] == 10_000

    run(scenario)
