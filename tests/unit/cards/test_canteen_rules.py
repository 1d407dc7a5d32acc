"""Rules documents are validated on the way in; PARAMS are derived from them."""
from __future__ import annotations

import pytest

from chalicelib.domain.canteen_rules import DEFAULT_RULES, rules_from_dict, terminal_params
from chalicelib.domain.canteen_wallets import monthly_grant, split, within_reversal_window
from chalicelib.domain.errors import InvalidRequest

GOOD = {
    "meal_periods": [{"code": "lunch", "name": "午餐", "start": "11:00", "end": "13:30"}],
    "restrict_to_meals": True,
    "classes": {"staff": {"per_payment_max_fen": 3_000}, "student": {"per_payment_max_fen": 1_500}},
    "terminals": {"T1": {"mode": "fixed", "fixed_amount_fen": 1_200}},
    "offline": {"per_payment_max_fen": 1_000, "per_card_day_max_fen": 3_000, "max_count": 50},
}


def test_params_for_a_terminal() -> None:
    params = terminal_params(rules_from_dict(GOOD, 7), "T1")
    assert params == {
        "ver": 7, "mode": "fixed", "fixed_amount_fen": 1_200, "meal_amounts": {},
        "meal_periods": [{"code": "lunch", "name": "午餐", "start": "11:00", "end": "13:30"}],
        "restrict_to_meals": True, "limits": {"per_payment_max_fen": 3_000},
        "offline": {"per_payment_max_fen": 1_000, "per_card_day_max_fen": 3_000, "max_count": 50},
    }
    assert terminal_params(DEFAULT_RULES, "T9")["mode"] == "free"


@pytest.mark.parametrize("bad", [
    {"meal_periods": [{"code": "x", "start": "13:00", "end": "11:00"}]},
    {"meal_periods": [{"code": "x", "start": "11:00", "end": "13:00"}, {"code": "y", "start": "12:00", "end": "14:00"}]},
    {"meal_periods": [{"code": "x", "start": "25:00", "end": "26:00"}]},
    {"meal_periods": "lunch"},
    {"classes": {"a": {"discount_ppm": {"*": 1_000_001}}}},
    {"classes": {"a": {"per_payment_max_fen": 1.5}}},
    {"classes": {"a": {"per_day_max_count": -1}}},
    {"classes": {"a": {"terminals": "T1"}}},
    {"terminals": {"T1": {"mode": "fixed"}}},
    {"terminals": {"T1": {"mode": "cheap"}}},
    {"wallet_order": "random"},
    {"subsidy_policy": "keep"},
    {"offline_policy": "drop"},
    {"reversal_window_s": -1},
    [],
])
def test_bad_rules_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest):
        rules_from_dict(bad, 1)


@pytest.mark.parametrize("amount,cash,subsidy,order,expected", [
    (300, 1_000, 200, "subsidy_first", (200, 100)),
    (300, 1_000, 200, "cash_first", (0, 300)),
    (1_100, 1_000, 200, "cash_first", (100, 1_000)),
    (1_201, 1_000, 200, "subsidy_first", None),
    (0, 0, 0, "subsidy_first", (0, 0)),
])
def test_wallet_split(amount, cash, subsidy, order, expected) -> None:  # type: ignore[no-untyped-def]
    parts = split(amount, cash, subsidy, order)
    assert (None if parts is None else (parts.subsidy_fen, parts.cash_fen)) == expected


def test_overdraft_takes_the_rest_from_cash() -> None:
    parts = split(1_500, 1_000, 200, "subsidy_first", overdraft=True)
    assert (parts.subsidy_fen, parts.cash_fen) == (200, 1_300)


def test_monthly_grant_reset_or_carry() -> None:
    assert monthly_grant(20_000, -50, "reset").expire_fen == 0  # an overdrawn subsidy is not 'given back'
    assert (monthly_grant(20_000, 3_000, "reset").expire_fen, monthly_grant(20_000, 3_000, "carry").expire_fen) == (3_000, 0)


def test_reversal_window() -> None:
    assert within_reversal_window(100.0, 100.0 + 86_400, 86_400)
    assert not within_reversal_window(100.0, 100.0 + 86_401, 86_400)
