"""The per-card daily offline count from the cloud's PARAMS: a terminal limited to N offline swipes of a
card a day refuses the N+1th; a terminal whose PARAMS do not carry the count keeps the config's."""
from __future__ import annotations

import pytest

from pathlib import Path

from edge_agent.config import OfflineLimits
from edge_agent.params import limits_from_params

from edge_agent_support import agent_world, eventually, run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)

LIMITS = {"max_payment_fen": 1000, "max_card_day_fen": 5000, "max_card_day_count": 3, "max_terminal_pending": 50}
OFFLINE = {"per_payment_max_fen": 1000, "per_card_day_max_fen": 5000, "max_count": 50}


def test_limits_from_params_take_the_count_or_keep_the_fallback() -> None:
    fallback = OfflineLimits(max_card_day_count=3)
    assert limits_from_params({"offline": {**OFFLINE, "per_card_day_max_count": 1}}, fallback).max_card_day_count == 1
    assert limits_from_params({"offline": OFFLINE}, fallback).max_card_day_count == 3
    for bad in (-1, "2", 1.5, True, None):
        assert limits_from_params({"offline": {"per_card_day_max_count": bad}}, fallback) == fallback


def test_the_cloud_count_refuses_the_next_offline_swipe(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with agent_world(tmp_path, offline_limits=LIMITS) as world:
            world.cloud.set_params("T0001", offline={**OFFLINE, "per_card_day_max_count": 2})
            await eventually(lambda: world.agent.params.version_of("T0001") == 1)
            assert world.agent.terminals.limits_for("T0001").max_card_day_count == 2
            assert world.agent.terminals.limits_for("T0002").max_card_day_count == 3  # no count sent: the config's
            world.cloud.down = True
            one = await world.terminal("T0001")
            codes = [(await one.card_pay(txn, "10000001", 100))["code"] for txn in (1, 2, 3)]
            assert codes == ["OK", "OK", "ERR012"]  # two a card a day at T0001
            assert (await one.card_pay(4, "10000002", 100))["code"] == "OK"  # another card has its own two
            two = await world.terminal("T0002")
            codes = [(await two.card_pay(txn, "10000003", 100))["code"] for txn in (5, 6, 7, 8)]
            assert codes == ["OK", "OK", "OK", "ERR012"]  # the config's three
            assert world.agent.store.offline_counts() == {"pending": 6}
            assert world.cloud.booked() == []

    run(scenario)
