"""Canteen rules through the edge API: discounts, meal and day limits across payments, fixed mode."""
from __future__ import annotations

import json

from tests.support.card_world import card_snapshot, issue_card
from tests.support.ledger_invariants import check_card_ledger

CARD = "50000001"
DINNER = {"code": "dinner", "name": "晚餐", "start": "17:00", "end": "19:30"}  # T0 is 19:06 Beijing


def _pay(edge, world, txn: int, amount: int, terminal: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(edge.post("/edge/v1/cards/pay", {"terminal_id": terminal or world.terminal_id, "txn": txn,
                                                       "card": CARD, "amount_fen": amount, "ts": 1}).body)


def test_class_discount_is_what_leaves_the_wallet(edge, world, cs, clock) -> None:
    cs.rules.put_rules(world.merchant_id, {"meal_periods": [DINNER], "classes": {
        "student": {"discount_ppm": {"dinner": 800_000}}}}, None, clock.now())
    issue_card(cs, world.merchant_id, CARD, cash_fen=2_000, class_code="student")
    answer = _pay(edge, world, 1, 1_250)
    assert (answer["charged_fen"], answer["balance_fen"], answer["voice"]) == (1_000, 1_000, "扣款10.00元")
    assert check_card_ledger(world.merchant_id).by_kind["CARD_PAYMENT"] == -1_000


def test_meal_and_day_limits_count_across_payments_and_restart_next_day(edge, world, cs, clock) -> None:
    cs.rules.put_rules(world.merchant_id, {"meal_periods": [DINNER], "classes": {
        "staff": {"per_meal_max_count": 2, "per_day_max_fen": 1_500}}}, None, clock.now())
    issue_card(cs, world.merchant_id, CARD, cash_fen=10_000, class_code="staff")
    assert [_pay(edge, world, 1, 600)["code"], _pay(edge, world, 2, 600)["code"]] == ["OK", "OK"]
    assert _pay(edge, world, 3, 100)["code"] == "ERR004"  # third dinner
    clock.advance(3_600)  # 20:06: after dinner, same day
    assert _pay(edge, world, 4, 301)["code"] == "ERR005"  # 12.00 + 3.01 > 15.00 a day
    assert _pay(edge, world, 5, 300)["code"] == "OK"
    card = card_snapshot(world.merchant_id, [CARD])["cards"][CARD]
    assert (card["day"], card["day_fen"], card["day_count"], card["meal_count"]) == ("2026-11-18", 1_500, 3, 2)
    clock.advance(86_400 - 3_600)  # next day's dinner
    assert _pay(edge, world, 6, 600)["code"] == "OK"
    card = card_snapshot(world.merchant_id, [CARD])["cards"][CARD]
    assert (card["day"], card["day_fen"], card["meal"], card["meal_count"]) == ("2026-11-19", 600, "2026-11-19#dinner", 1)
    assert check_card_ledger(world.merchant_id).by_kind["CARD_PAYMENT"] == -2_100


def test_fixed_mode_per_terminal(edge, world, cs, clock) -> None:
    fixed, free = list(world.terminals)
    cs.rules.put_rules(world.merchant_id, {"meal_periods": [DINNER], "terminals": {
        fixed: {"mode": "fixed", "meal_amounts": {"dinner": 1_200}, "fixed_amount_fen": 500}}}, None, clock.now())
    issue_card(cs, world.merchant_id, CARD, cash_fen=5_000)
    assert _pay(edge, world, 1, 1_000, fixed)["code"] == "ERR009"
    assert _pay(edge, world, 2, 1_200, fixed)["code"] == "OK"
    assert _pay(edge, world, 3, 1_000, free)["code"] == "OK"
    params = json.loads(edge.post("/edge/v1/cards/params", {"terminal_id": fixed}).body)
    assert (params["mode"], params["meal_amounts"], params["fixed_amount_fen"]) == ("fixed", {"dinner": 1_200}, 500)
