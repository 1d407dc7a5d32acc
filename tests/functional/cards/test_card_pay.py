"""CARD_PAY through the edge API: booking, repeats, every result code with nothing changed."""
from __future__ import annotations

import json

import pytest

from chalicelib.store.models import MerchantModel
from tests.support.card_world import card_snapshot, grant_subsidy, issue_card
from tests.support.ledger_invariants import check_card_ledger

PAY = "/edge/v1/cards/pay"
CARD = "10000001"


def pay(edge, world, txn: int, amount_fen: int, card: str = CARD, terminal: str | None = None):  # type: ignore[no-untyped-def]
    answer = edge.post(PAY, {"terminal_id": terminal or world.terminal_id, "txn": txn, "card": card,
                             "amount_fen": amount_fen, "ts": int(edge.clock.now())})
    return answer.status_code, json.loads(answer.body)


def test_payment_debits_the_card_once_and_books_it(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=10_000)
    status, body = pay(edge, world, 1, 1250)
    assert status == 200
    assert body == {"ok": True, "code": "OK", "msg": "扣款成功", "voice": "扣款12.50元", "balance_fen": 8750,
                    "charged_fen": 1250, "txn": 1}
    state = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    assert state["cards"][CARD]["cash_fen"] == 8750
    assert state["txn_dedupe"] == [f"txn#{world.terminal_id}#1"]
    (ledger,) = state["ledgers"].values()
    payment = [e for e in ledger if e["kind"] == "CARD_PAYMENT"]
    assert [(e["entry_id"], e["amount_fen"], e["wallet"]) for e in payment] == [
        (f"pay#{world.terminal_id}#1#cash", -1250, "cash")]
    totals = check_card_ledger(world.merchant_id)
    assert totals.balances_fen == 8750 and totals.payments_booked == 1


def test_a_repeat_returns_the_first_answer_and_books_nothing(edge, world, cs, clock) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=10_000)
    first = pay(edge, world, 5, 300)
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    clock.advance(3)
    again = pay(edge, world, 5, 300)
    assert again == first
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before
    assert check_card_ledger(world.merchant_id).payments_booked == 1


def test_the_same_txn_for_another_amount_is_refused(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=10_000)
    pay(edge, world, 6, 300)
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    status, body = pay(edge, world, 6, 301)
    assert (status, body["code"]) == (409, "CONFLICT")
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before


def test_a_txn_of_a_qr_order_is_not_a_card_payment(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=10_000)
    edge.post("/edge/v1/orders/qr", {"terminal_id": world.terminal_id, "txn": 9, "amount_fen": 300})
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    status, body = pay(edge, world, 9, 300)
    assert (status, body["code"]) == (409, "CONFLICT")
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before


def test_subsidy_is_spent_before_cash(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    grant_subsidy(cs, world.merchant_id, CARD, 500)
    status, body = pay(edge, world, 1, 800)
    assert body["code"] == "OK" and body["balance_fen"] == 700
    card = card_snapshot(world.merchant_id, [CARD])["cards"][CARD]
    assert (card["subsidy_fen"], card["cash_fen"]) == (0, 700)
    check_card_ledger(world.merchant_id)


def test_cash_first_by_setting(edge, world, cs, clock) -> None:
    cs.rules.put_rules(world.merchant_id, {"wallet_order": "cash_first"}, None, clock.now())
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    grant_subsidy(cs, world.merchant_id, CARD, 500)
    assert pay(edge, world, 1, 1_200)[1]["code"] == "OK"
    card = card_snapshot(world.merchant_id, [CARD])["cards"][CARD]
    assert (card["subsidy_fen"], card["cash_fen"]) == (300, 0)
    check_card_ledger(world.merchant_id)


# --- every result code: the answer, and nothing changed --------------------------------------

# The tests' fixed clock (tests/conftest.py T0) reads 19:06:40 Beijing.
DINNER_NOW = {"meal_periods": [{"code": "dinner", "name": "晚餐", "start": "17:00", "end": "19:30"}]}


def _rules(**overrides: object) -> dict:
    return {**DINNER_NOW, **overrides}


REFUSALS = [
    # (code, rules, card setup, amount, which card)
    ("ERR001", {}, None, 100, "99999999"),
    ("ERR002", {}, "cancel", 100, CARD),
    ("ERR003", _rules(classes={"staff": {"terminals": ["T-OTHER"]}}), None, 100, CARD),
    ("ERR004", _rules(classes={"staff": {"per_meal_max_count": 1}}), "paid_once", 100, CARD),
    ("ERR005", _rules(classes={"staff": {"per_day_max_fen": 1_000}}), "paid_once", 901, CARD),
    ("ERR006", {"meal_periods": [{"code": "lunch", "name": "午餐", "start": "11:00", "end": "13:00"}],
                "restrict_to_meals": True}, None, 100, CARD),
    ("ERR007", {}, None, 5_001, CARD),
    ("ERR008", {}, "lost", 100, CARD),
    ("ERR009", {}, None, 0, CARD),
    ("ERR009", {"terminals": {"__T__": {"mode": "fixed", "fixed_amount_fen": 1_200}}}, None, 1_000, CARD),
    ("ERR010", _rules(classes={"staff": {"per_payment_max_fen": 2_000}}), None, 2_001, CARD),
]


@pytest.mark.parametrize("code,rules,setup,amount,card", REFUSALS, ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSALS)])
def test_refusals_change_nothing(edge, world, cs, clock, code, rules, setup, amount, card) -> None:  # type: ignore[no-untyped-def]
    rules = json.loads(json.dumps(rules).replace("__T__", world.terminal_id))
    cs.rules.put_rules(world.merchant_id, rules, None, clock.now())
    issue_card(cs, world.merchant_id, CARD, cash_fen=5_000, class_code="staff")
    if setup == "cancel":
        cs.admin.cancel(world.merchant_id, CARD)
    elif setup == "lost":
        cs.admin.report_lost(world.merchant_id, CARD)
    elif setup == "paid_once":
        assert pay(edge, world, 1, 100)[1]["code"] == "OK"
    before = card_snapshot(world.merchant_id, [CARD, card], world.terminal_id)
    status, body = pay(edge, world, 2, amount, card=card)
    assert status == 200
    assert (body["ok"], body["code"]) == (False, code)
    assert body["msg"] and body["voice"]
    assert body["balance_fen"] == (None if code in ("ERR001", "ERR002", "ERR008") or amount <= 0 else
                                   card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"])
    assert card_snapshot(world.merchant_id, [CARD, card], world.terminal_id) == before
    check_card_ledger(world.merchant_id)


def test_err011_merchant_not_active_changes_nothing(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=5_000)
    MerchantModel(world.merchant_id).update(actions=[MerchantModel.status.set("suspended")])
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    status, body = pay(edge, world, 1, 100)
    assert (status, body["ok"], body["code"], body["msg"]) == (200, False, "ERR011", "设置错误")
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before


@pytest.mark.parametrize("payload", [
    {"txn": 1, "card": CARD, "amount_fen": "100", "ts": 1},
    {"txn": 1, "card": 10000001, "amount_fen": 100, "ts": 1},
    {"txn": "1", "card": CARD, "amount_fen": 100, "ts": 1},
    {"txn": 1, "card": CARD, "amount_fen": 100},
    {"txn": 1, "card": CARD, "amount_fen": True, "ts": 1},
])
def test_malformed_requests_are_400_and_change_nothing(edge, world, cs, payload) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=5_000)
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    answer = edge.post(PAY, {"terminal_id": world.terminal_id, **payload})
    assert answer.status_code == 400
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before


def test_another_agents_terminal_is_404(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=5_000)
    before = card_snapshot(world.merchant_id, [CARD])
    answer = edge.post(PAY, {"terminal_id": "T-NOT-OURS", "txn": 1, "card": CARD, "amount_fen": 1, "ts": 1})
    assert answer.status_code == 404
    assert card_snapshot(world.merchant_id, [CARD]) == before
