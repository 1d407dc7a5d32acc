"""The counter's operator API: token auth, holders, issue, recharge, lost/found/cancel/replace,
reversal. Every money path asserts balances and the ledger invariants; bad input changes nothing."""
from __future__ import annotations

import json

import pytest

from tests.support.card_world import card_snapshot, issue_card, operator_for
from tests.support.ledger_invariants import check_card_ledger

CARD = "20000001"


@pytest.fixture
def op(http, cs, world):  # type: ignore[no-untyped-def]
    return operator_for(http, cs, world.merchant_id)


def _card(world, card_no: str = CARD) -> dict:  # type: ignore[no-untyped-def]
    return card_snapshot(world.merchant_id, [card_no])["cards"][card_no]


def test_without_the_token_nothing_happens(http, op, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=100)
    before = card_snapshot(world.merchant_id, [CARD])
    for headers in ({}, {"X-ScanPay-Merchant": world.merchant_id, "Authorization": "Bearer wrong"},
                    {"X-ScanPay-Merchant": "M-OTHER", "Authorization": f"Bearer {op.token}"}):
        answer = http.post(f"/cards/v1/cards/{CARD}/recharge", headers={"Content-Type": "application/json", **headers},
                           body=json.dumps({"amount_fen": 100, "request_id": "r1"}))
        assert answer.status_code == 401
    assert card_snapshot(world.merchant_id, [CARD]) == before


def test_holder_and_card_through_the_api(op, world) -> None:
    status, holder = op.call("POST", "/cards/v1/holders", {"name": "李四", "number": "S-17", "class_code": "student"})
    assert status == 201 and holder["card_no"] is None and holder["wechat_bound"] is False
    status, card = op.call("POST", f"/cards/v1/holders/{holder['holder_id']}/card", {"card_no": CARD})
    assert (status, card["status"], card["balance_fen"]) == (201, "active", 0)
    assert op.call("POST", f"/cards/v1/holders/{holder['holder_id']}/card", {"card_no": "20000002"})[0] == 409
    status, changed = op.call("PUT", f"/cards/v1/holders/{holder['holder_id']}", {"class_code": "staff", "phone": "139"})
    assert (changed["class_code"], changed["phone"]) == ("staff", "139")
    assert _card(world)["class_code"] == "staff"  # payments read the class from the card
    assert [h["holder_id"] for h in op.call("GET", "/cards/v1/holders")[1]["holders"]] == [holder["holder_id"]]
    assert op.call("DELETE", f"/cards/v1/holders/{holder['holder_id']}")[0] == 409  # cancel the card first


def test_recharge_is_booked_once_per_request_id(op, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD)
    first = op.call("POST", f"/cards/v1/cards/{CARD}/recharge", {"amount_fen": 5_000, "request_id": "R-1"})
    again = op.call("POST", f"/cards/v1/cards/{CARD}/recharge", {"amount_fen": 5_000, "request_id": "R-1"})
    assert first == again and first[0] == 200 and first[1]["balance_fen"] == 5_000
    assert op.call("POST", f"/cards/v1/cards/{CARD}/recharge", {"amount_fen": 4_000, "request_id": "R-1"})[0] == 409
    assert _card(world)["cash_fen"] == 5_000
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 5_000


@pytest.mark.parametrize("amount", [0, -100, 1.5, "100", None, True, 10**9])
def test_bad_recharge_amount_changes_nothing(op, world, cs, amount) -> None:  # type: ignore[no-untyped-def]
    issue_card(cs, world.merchant_id, CARD, cash_fen=100)
    before = card_snapshot(world.merchant_id, [CARD])
    status, body = op.call("POST", f"/cards/v1/cards/{CARD}/recharge", {"amount_fen": amount, "request_id": "x"})
    assert (status, body["code"]) == (400, "ERR009")
    assert card_snapshot(world.merchant_id, [CARD]) == before


def test_lost_found_and_repeat(op, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=100)
    assert op.call("POST", f"/cards/v1/cards/{CARD}/lost")[1]["status"] == "lost"
    assert op.call("POST", f"/cards/v1/cards/{CARD}/lost")[1]["status"] == "lost"  # a repeat changes nothing
    assert cs.blacklist.latest(world.merchant_id) == 1
    assert op.call("POST", f"/cards/v1/cards/{CARD}/found")[1]["status"] == "active"
    assert cs.blacklist.since(world.merchant_id, 0).add == []
    assert cs.blacklist.latest(world.merchant_id) == 2


def test_cancel_pays_out_cash_and_lapses_subsidy(op, world, cs) -> None:
    from tests.support.card_world import grant_subsidy

    issue_card(cs, world.merchant_id, CARD, cash_fen=3_000)
    grant_subsidy(cs, world.merchant_id, CARD, 700)
    status, body = op.call("POST", f"/cards/v1/cards/{CARD}/cancel")
    assert (status, body["status"], body["refund_cash_fen"], body["balance_fen"]) == (200, "cancelled", 3_000, 0)
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["CASH_REFUND"], totals.by_kind["SUBSIDY_EXPIRED"], totals.balances_fen) == (-3_000, -700, 0)
    assert cs.blacklist.since(world.merchant_id, 0).add == [CARD]


def test_replace_moves_the_account_to_the_new_card(op, edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=3_000)
    op.call("POST", f"/cards/v1/cards/{CARD}/lost")
    status, body = op.call("POST", f"/cards/v1/cards/{CARD}/replace", {"new_card_no": "20000009"})
    assert (status, body["card_no"], body["balance_fen"], body["status"]) == (200, "20000009", 3_000, "active")
    assert op.call("POST", f"/cards/v1/cards/{CARD}/replace", {"new_card_no": "20000009"})[0] == 200  # repeat
    pay = {"terminal_id": world.terminal_id, "amount_fen": 100, "ts": 1}
    assert json.loads(edge.post("/edge/v1/cards/pay", {**pay, "txn": 1, "card": CARD}).body)["code"] == "ERR001"
    assert json.loads(edge.post("/edge/v1/cards/pay", {**pay, "txn": 2, "card": "20000009"}).body)["code"] == "OK"
    assert cs.blacklist.since(world.merchant_id, 0).add == [CARD]
    check_card_ledger(world.merchant_id)


def test_reversal_credits_the_wallets_once_within_the_window(op, edge, world, cs, clock) -> None:
    from tests.support.card_world import grant_subsidy

    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    grant_subsidy(cs, world.merchant_id, CARD, 200)
    edge.post("/edge/v1/cards/pay", {"terminal_id": world.terminal_id, "txn": 7, "card": CARD, "amount_fen": 500, "ts": 1})
    assert (_card(world)["subsidy_fen"], _card(world)["cash_fen"]) == (0, 700)
    status, body = op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 7})
    assert (status, body["reversed_fen"], body["balance_fen"]) == (200, 500, 1_200)
    assert op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 7}) == (status, body)
    assert (_card(world)["subsidy_fen"], _card(world)["cash_fen"]) == (200, 1_000)
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["REVERSAL"], totals.by_kind["CARD_PAYMENT"]) == (500, -500)


def test_reversal_outside_the_window_or_of_nothing_changes_nothing(op, edge, world, cs, clock) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    edge.post("/edge/v1/cards/pay", {"terminal_id": world.terminal_id, "txn": 8, "card": CARD, "amount_fen": 500, "ts": 1})
    clock.advance(86_401)
    before = card_snapshot(world.merchant_id, [CARD])
    assert op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 8})[0] == 409
    assert op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 99})[0] == 404
    assert card_snapshot(world.merchant_id, [CARD]) == before


def test_rules_through_the_api_bump_the_params_version(op, edge, world) -> None:
    status, body = op.call("PUT", "/cards/v1/rules", {"rules": {"wallet_order": "cash_first"}, "expected_version": 0})
    assert (status, body["version"], body["rules"]) == (200, 1, {"wallet_order": "cash_first"})
    assert op.call("PUT", "/cards/v1/rules", {"rules": {}, "expected_version": 0})[0] == 409
    assert op.call("PUT", "/cards/v1/rules", {"rules": {"wallet_order": "x"}})[0] == 400
    params = json.loads(edge.post("/edge/v1/cards/params", {"terminal_id": world.terminal_id}).body)
    assert params["ver"] == 1 and params["mode"] == "free" and params["offline"]["max_count"] == 200
