"""The day/meal limit counters outside a plain payment: a reversal gives back what its payment
counted (once), and an offline record counts towards the day and meal of its own time."""
from __future__ import annotations

import json

from chalicelib.services.card_admin import CardAdminService
from chalicelib.store.cards import CardStore
from tests.support.card_world import card_state, issue_card, limit_counters, operator_for, upload_offline
from tests.support.ledger_invariants import check_card_ledger
from tests.conftest import T0

CARD = "51000001"
DINNER = {"code": "dinner", "name": "晚餐", "start": "17:00", "end": "19:30"}  # T0 is 19:06 Beijing
LIMITS = {"meal_periods": [DINNER], "classes": {"staff": {"per_day_max_fen": 1_000, "per_meal_max_count": 2}}}


def _pay(edge, world, txn: int, amount: int) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(edge.post("/edge/v1/cards/pay", {"terminal_id": world.terminal_id, "txn": txn,
                                                       "card": CARD, "amount_fen": amount, "ts": 1}).body)


def _setup(cs, world, clock, cash_fen: int = 5_000) -> None:  # type: ignore[no-untyped-def]
    cs.rules.put_rules(world.merchant_id, LIMITS, None, clock.now())
    issue_card(cs, world.merchant_id, CARD, cash_fen=cash_fen, class_code="staff")


def test_a_reversal_gives_back_the_day_and_meal_limits(http, edge, world, cs, clock) -> None:
    _setup(cs, world, clock)
    assert [_pay(edge, world, 1, 600)["code"], _pay(edge, world, 2, 400)["code"]] == ["OK", "OK"]
    assert _pay(edge, world, 3, 100)["code"] == "ERR004"  # a third dinner
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 1_000, 2, "2026-11-18#dinner", 1_000, 2)
    op = operator_for(http, cs, world.merchant_id)
    status, body = op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 2})
    assert (status, body["reversed_fen"], body["balance_fen"]) == (200, 400, 4_400)
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 600, 1, "2026-11-18#dinner", 600, 1)
    # A repeat answers the first answer and gives nothing back twice.
    assert op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 2}) == (status, body)
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 600, 1, "2026-11-18#dinner", 600, 1)
    assert _pay(edge, world, 4, 400)["code"] == "OK"  # the reversed meal's room is free again
    assert _pay(edge, world, 5, 1)["code"] == "ERR004"
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 1_000, 2, "2026-11-18#dinner", 1_000, 2)
    assert card_state(world.merchant_id, CARD)["cash_fen"] == 4_000
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["CARD_PAYMENT"], totals.by_kind["REVERSAL"], totals.balances_fen) == (-1_400, 400, 4_000)


def test_a_reversal_on_a_later_day_leaves_that_days_counters_alone(http, edge, world, cs, clock) -> None:
    _setup(cs, world, clock)
    assert _pay(edge, world, 1, 600)["code"] == "OK"
    clock.advance(6 * 3_600)  # 01:06 the next day, within the 24 h reversal window
    assert _pay(edge, world, 2, 300)["code"] == "OK"  # outside meals: the day counters restart
    before = limit_counters(world.merchant_id, CARD)
    assert before == ("2026-11-19", 300, 1, "2026-11-18#dinner", 600, 1)
    status, body = operator_for(http, cs, world.merchant_id).call(
        "POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 1})
    assert (status, body["reversed_fen"]) == (200, 600)
    assert limit_counters(world.merchant_id, CARD) == before  # yesterday's payment does not free today's limit
    assert check_card_ledger(world.merchant_id).balances_fen == 5_000 - 300


def test_an_offline_record_counts_towards_the_limits_of_its_own_meal(edge, world, cs, clock) -> None:
    _setup(cs, world, clock)
    assert upload_offline(edge, world.terminal_id, CARD, 1, 700, int(T0) - 600)["accepted"] == [1]  # 18:56, dinner
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 700, 1, "2026-11-18#dinner", 700, 1)
    answer = _pay(edge, world, 2, 400)
    assert (answer["code"], answer["balance_fen"]) == ("ERR005", 4_300)  # 7.00 + 4.00 > 10.00 a day
    assert _pay(edge, world, 3, 300)["code"] == "OK"
    # Over the limit offline: booked all the same (the meal was served), and counted.
    assert upload_offline(edge, world.terminal_id, CARD, 4, 500, int(T0) - 300)["accepted"] == [4]
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 1_500, 3, "2026-11-18#dinner", 1_500, 3)
    assert card_state(world.merchant_id, CARD)["cash_fen"] == 5_000 - 1_500
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["CARD_PAYMENT_OFFLINE"], totals.by_kind["CARD_PAYMENT"]) == (-1_200, -300)


def test_an_offline_record_of_an_earlier_day_moves_no_counters(edge, world, cs, clock) -> None:
    _setup(cs, world, clock)
    assert _pay(edge, world, 1, 600)["code"] == "OK"
    before = limit_counters(world.merchant_id, CARD)
    assert upload_offline(edge, world.terminal_id, CARD, 2, 300, int(T0) - 86_400)["accepted"] == [2]  # yesterday's dinner
    assert limit_counters(world.merchant_id, CARD) == before
    assert upload_offline(edge, world.terminal_id, CARD, 3, 200, int(T0) - 10_000)["accepted"] == [3]  # 16:20 today, before dinner
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 800, 2, "2026-11-18#dinner", 600, 1)
    assert check_card_ledger(world.merchant_id).balances_fen == 5_000 - 1_100


def test_reversing_an_offline_record_gives_back_its_counters(http, edge, world, cs, clock) -> None:
    _setup(cs, world, clock)
    upload_offline(edge, world.terminal_id, CARD, 1, 700, int(T0) - 600)
    status, body = operator_for(http, cs, world.merchant_id).call(
        "POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 1})
    assert (status, body["reversed_fen"]) == (200, 700)
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 0, 0, "2026-11-18#dinner", 0, 0)
    assert _pay(edge, world, 2, 1_000)["code"] == "OK"
    assert check_card_ledger(world.merchant_id).balances_fen == 4_000


class WriteBeforeCredit(CardStore):
    """The real store, with another write to the card landing between a reversal's read and its write."""

    def __init__(self, settings, before) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.before, self.left = before, 1

    def credit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.left:
            self.left -= 1
            self.before()
        return super().credit(*args, **kwargs)


def _racing_admin(container, cs, before) -> CardAdminService:  # type: ignore[no-untyped-def]
    store = WriteBeforeCredit(container.settings, before)
    return CardAdminService(store, cs.holders, cs.lifecycle, cs.rules, container.clock)


def test_two_racing_reversals_give_back_once(edge, world, cs, clock, container) -> None:
    _setup(cs, world, clock)
    _pay(edge, world, 1, 600)
    _pay(edge, world, 2, 400)
    first: list[dict] = []
    racing = _racing_admin(container, cs, lambda: first.append(cs.admin.reverse(world.merchant_id, world.terminal_id, 2)))
    assert racing.reverse(world.merchant_id, world.terminal_id, 2) == first[0]  # the loser gets the first answer
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 600, 1, "2026-11-18#dinner", 600, 1)
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["REVERSAL"], totals.balances_fen) == (400, 4_400)


def test_a_payment_between_the_reversals_read_and_write_keeps_its_count(edge, world, cs, clock, container) -> None:
    _setup(cs, world, clock)
    _pay(edge, world, 1, 600)
    racing = _racing_admin(container, cs, lambda: _pay(edge, world, 2, 300))
    assert racing.reverse(world.merchant_id, world.terminal_id, 1)["reversed_fen"] == 600
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 300, 1, "2026-11-18#dinner", 300, 1)
    assert check_card_ledger(world.merchant_id).balances_fen == 5_000 - 300
