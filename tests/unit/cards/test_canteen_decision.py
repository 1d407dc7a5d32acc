"""The canteen rules decide a card payment: order of checks, discounts, limits, wallet split."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.canteen_decision import Charge, Refused, decide, decide_offline
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
    assert decide_offline(CARD, 900, "subsidy_first", False).cash_fen == 900
    assert decide_offline(CARD, 1_001, "subsidy_first", False) == Refused("ERR007")
    overdraft = decide_offline(CARD, 1_001, "subsidy_first", True)
    assert overdraft.cash_fen == 1_001 and overdraft.overdraft and not overdraft.counted
    lost = replace(CARD, status=CardStatus.LOST)
    assert decide_offline(lost, 100, "subsidy_first", False) == Refused("ERR008")
    assert isinstance(decide_offline(lost, 100, "subsidy_first", True), Charge)
    cancelled = replace(CARD, status=CardStatus.CANCELLED)
    assert decide_offline(cancelled, 100, "subsidy_first", True) == Refused("ERR002")
    assert decide_offline(CARD, 0, "subsidy_first", True) == Refused("ERR009")
