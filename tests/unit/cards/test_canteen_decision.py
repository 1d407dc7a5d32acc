"""The canteen rules decide a card payment: order of checks, discounts, limits, wallet split."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.canteen_decision import Charge, Refused, Rollback, decide, decide_offline, rollback
from chalicelib.domain.canteen_rules import rules_from_dict
from chalicelib.domain.cards import CardState, CardStatus

NOW = 1_795_000_000.0  # 2026-11-18 19:06:40 Beijing
DAY = "2026-11-18"
CARD = CardState("M1", "1001", "A1", "H1", "staff", CardStatus.ACTIVE, cash_fen=1_000, subsidy_fen=0)
MEALS = [{"code": "breakfast", "name": "早餐", "start": "06:30", "end": "09:00"},
         {"code": "dinner", "name": "晚餐", "start": "17:00", "end": "19:30"}]


def rules(**raw: object):  # type: ignore[no-untyped-def]
    return rules_from_dict({"meal_periods": MEALS, **raw}, 1)


def test_default_rules_charge_the_amount_from_the_wallets() -> None:
    charge = decide(rules(), CARD, "T1", 300, NOW)
    assert isinstance(charge, Charge)
    assert (charge.charged_fen, charge.subsidy_fen, charge.cash_fen) == (300, 0, 300)
    assert (charge.day, charge.meal, charge.day_fresh, charge.meal_fresh) == (DAY, f"{DAY}#dinner", True, True)


@pytest.mark.parametrize("status,code", [(CardStatus.LOST, "ERR008"), (CardStatus.CANCELLED, "ERR002"),
                                         (CardStatus.REPLACED, "ERR001")])
def test_card_status_comes_first(status, code) -> None:  # type: ignore[no-untyped-def]
    assert decide(rules(), replace(CARD, status=status), "T1", 300, NOW) == Refused(code)


def test_terminals_per_class() -> None:
    r = rules(classes={"staff": {"terminals": ["T2"]}})
    assert decide(r, CARD, "T1", 300, NOW) == Refused("ERR003")
    assert isinstance(decide(r, CARD, "T2", 300, NOW), Charge)


def test_meal_periods_only_when_restricted() -> None:
    late = NOW + 3600  # 20:06, after dinner
    assert decide(rules(restrict_to_meals=True), CARD, "T1", 300, late) == Refused("ERR006")
    charge = decide(rules(), CARD, "T1", 300, late)
    assert isinstance(charge, Charge) and charge.meal is None


def test_fixed_mode_takes_only_the_meal_price() -> None:
    r = rules(terminals={"T1": {"mode": "fixed", "fixed_amount_fen": 800, "meal_amounts": {"dinner": 900}}})
    assert decide(r, CARD, "T1", 800, NOW) == Refused("ERR009")
    assert isinstance(decide(r, CARD, "T1", 900, NOW), Charge)
    assert isinstance(decide(r, CARD, "T1", 800, NOW + 3600), Charge)  # no meal: the terminal's fixed price


def test_discount_per_class_and_meal_rounds_half_up() -> None:
    r = rules(classes={"staff": {"discount_ppm": {"dinner": 850_000, "*": 900_000}}})
    assert decide(r, CARD, "T1", 1_001, NOW).charged_fen == 851  # 850.85 -> 851
    assert decide(r, CARD, "T1", 1_001, NOW + 3600).charged_fen == 901  # 900.9 -> 901


def test_per_payment_limit_applies_to_the_discounted_amount() -> None:
    r = rules(classes={"staff": {"per_payment_max_fen": 900, "discount_ppm": {"*": 500_000}}})
    assert isinstance(decide(r, CARD, "T1", 1_800, NOW), Charge)
    assert decide(r, CARD, "T1", 1_802, NOW) == Refused("ERR010")


def test_counts_and_amounts_per_meal_and_day() -> None:
    r = rules(classes={"staff": {"per_meal_max_count": 2, "per_day_max_fen": 1_000, "per_meal_max_fen": 700}})
    used = replace(CARD, day=DAY, day_fen=600, day_count=1, meal=f"{DAY}#dinner", meal_fen=600, meal_count=1)
    charge = decide(r, used, "T1", 100, NOW)
    assert isinstance(charge, Charge) and not charge.day_fresh and not charge.meal_fresh
    assert (charge.day_fen_cap, charge.meal_fen_cap, charge.meal_count_cap, charge.day_count_cap) == (900, 600, 1, None)
    assert decide(r, used, "T1", 101, NOW) == Refused("ERR005")  # the meal's 7.00
    assert decide(r, replace(used, meal_count=2), "T1", 1, NOW) == Refused("ERR004")
    yesterday = replace(used, day="2026-11-17", meal="2026-11-17#dinner", meal_count=2)
    fresh = decide(r, yesterday, "T1", 700, NOW)
    assert isinstance(fresh, Charge) and fresh.day_fresh and fresh.meal_fresh


def test_count_is_checked_before_amount() -> None:
    r = rules(classes={"staff": {"per_day_max_count": 1, "per_day_max_fen": 100}})
    used = replace(CARD, day=DAY, day_fen=100, day_count=1)
    assert decide(r, used, "T1", 100, NOW) == Refused("ERR004")


def test_balance_last() -> None:
    assert decide(rules(), CARD, "T1", 1_001, NOW) == Refused("ERR007")
    both = replace(CARD, subsidy_fen=500)
    charge = decide(rules(), both, "T1", 1_200, NOW)
    assert (charge.subsidy_fen, charge.cash_fen) == (500, 700)


def test_unknown_class_pays_full_price_without_limits() -> None:
    r = rules(classes={"student": {"per_payment_max_fen": 1}})
    assert decide(r, CARD, "T1", 900, NOW).charged_fen == 900


def test_offline_records_check_status_and_balance_only() -> None:
    r = rules()
    assert decide_offline(r, CARD, 900, NOW, False).cash_fen == 900
    assert decide_offline(r, CARD, 1_001, NOW, False) == Refused("ERR007")
    overdraft = decide_offline(r, CARD, 1_001, NOW, True)
    assert overdraft.cash_fen == 1_001 and overdraft.overdraft and overdraft.counted
    lost = replace(CARD, status=CardStatus.LOST)
    assert decide_offline(r, lost, 100, NOW, False) == Refused("ERR008")
    assert isinstance(decide_offline(r, lost, 100, NOW, True), Charge)
    cancelled = replace(CARD, status=CardStatus.CANCELLED)
    assert decide_offline(r, cancelled, 100, NOW, True) == Refused("ERR002")
    assert decide_offline(r, CARD, 0, NOW, True) == Refused("ERR009")


def test_offline_records_count_without_caps_in_their_own_day_and_meal() -> None:
    r = rules(classes={"staff": {"per_day_max_fen": 500, "per_meal_max_count": 1}})
    used = replace(CARD, day=DAY, day_fen=500, day_count=1, meal=f"{DAY}#dinner", meal_count=1, meal_fen=500)
    charge = decide_offline(r, used, 300, NOW, False)  # over both limits: booked all the same, counted
    assert (charge.day, charge.meal, charge.day_fresh, charge.meal_fresh, charge.counted) == (
        DAY, f"{DAY}#dinner", False, False, True)
    assert (charge.day_fen_cap, charge.meal_count_cap) == (None, None)
    breakfast = NOW - 11 * 3_600  # 08:06 the same day: a meal before the one the card counts
    charge = decide_offline(r, used, 300, breakfast, False)
    assert (charge.day, charge.meal, charge.day_fresh, charge.counted) == (DAY, None, False, True)
    yesterday = decide_offline(r, used, 300, NOW - 86_400, False)  # that day's counters are gone
    assert (yesterday.counted, yesterday.meal) == (False, None)
    fresh = decide_offline(r, replace(CARD, day="2026-11-17", meal="2026-11-17#dinner"), 300, NOW, False)
    assert (fresh.day_fresh, fresh.meal_fresh, fresh.meal) == (True, True, f"{DAY}#dinner")
    later = decide_offline(r, replace(used, meal=f"{DAY}#breakfast"), 300, NOW, False)
    assert (later.meal, later.meal_fresh) == (f"{DAY}#dinner", True)


def test_a_reversal_gives_back_the_counters_of_a_period_still_counted() -> None:
    used = replace(CARD, day=DAY, day_fen=900, day_count=2, meal=f"{DAY}#dinner", meal_count=2, meal_fen=900)
    assert rollback(used, DAY, f"{DAY}#dinner", 400) == Rollback(400, 1, 400, 1)
    assert rollback(used, DAY, None, 400) == Rollback(400, 1, 0, 0)  # paid outside a meal period
    assert rollback(used, DAY, f"{DAY}#breakfast", 400) == Rollback(400, 1, 0, 0)  # that meal is over
    assert rollback(used, "2026-11-17", "2026-11-17#dinner", 400) == Rollback()  # that day is over
    assert rollback(used, None, None, 400) == Rollback()  # the payment counted nowhere
    assert rollback(replace(used, day_fen=100, meal_fen=100), DAY, f"{DAY}#dinner", 400) == Rollback(100, 1, 100, 1)
    free_meal = rollback(used, DAY, f"{DAY}#dinner", 0)
    assert free_meal == Rollback(0, 1, 0, 1) and free_meal.day_touched and free_meal.meal_touched
