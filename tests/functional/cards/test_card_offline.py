"""Offline batches: booked once, repeats accepted again, rule breakers booked or kept by policy,
never dropped; kept records resolved by the merchant."""
from __future__ import annotations

import json

import pytest

from tests.support.card_world import card_snapshot, issue_card, operator_for
from tests.support.ledger_invariants import check_card_ledger

OFF = "/edge/v1/cards/offline"
CARD = "40000001"


def _upload(edge, world, records: list[dict]) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    answer = edge.post(OFF, {"terminal_id": world.terminal_id, "records": records})
    return answer.status_code, json.loads(answer.body)


def _rec(txn: int, amount: int, card: str = CARD, ts: int = 1_794_990_000) -> dict:
    return {"txn": txn, "card": card, "amount_fen": amount, "ts": ts, "offline_id": f"o{txn}"}


def test_a_batch_is_booked_once(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    status, body = _upload(edge, world, [_rec(1, 300), _rec(2, 200)])
    assert (status, body["accepted"], body["rejected"]) == (200, [1, 2], [])
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    assert _upload(edge, world, [_rec(1, 300), _rec(2, 200)])[1]["accepted"] == [1, 2]
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before
    assert before["cards"][CARD]["cash_fen"] == 500
    (ledger,) = before["ledgers"].values()
    offline = [e for e in ledger if e["kind"] == "CARD_PAYMENT_OFFLINE"]
    assert sorted(e["business_date"] for e in offline) == ["2026-11-18", "2026-11-18"]  # the record's own day
    assert check_card_ledger(world.merchant_id).payments_booked == 2


def test_a_payment_booked_online_is_accepted_not_booked_again(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    edge.post("/edge/v1/cards/pay", {"terminal_id": world.terminal_id, "txn": 5, "card": CARD, "amount_fen": 300, "ts": 1})
    assert _upload(edge, world, [_rec(5, 300)])[1] == {"ok": True, "accepted": [5], "rejected": []}
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == 700
    assert check_card_ledger(world.merchant_id).payments_booked == 1


@pytest.mark.parametrize("setup,amount,code", [("lost", 300, "ERR008"), (None, 1_500, "ERR007"),
                                               ("cancel", 300, "ERR002")])
def test_rule_breakers_are_kept_as_exceptions_by_default(edge, world, cs, http, setup, amount, code) -> None:  # type: ignore[no-untyped-def]
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    if setup == "lost":
        cs.admin.report_lost(world.merchant_id, CARD)
    elif setup == "cancel":
        cs.admin.cancel(world.merchant_id, CARD)
    before = card_snapshot(world.merchant_id, [CARD])
    assert _upload(edge, world, [_rec(1, amount)])[1]["rejected"] == [{"txn": 1, "code": code}]
    assert _upload(edge, world, [_rec(1, amount)])[1]["rejected"] == [{"txn": 1, "code": code}]  # same answer
    assert card_snapshot(world.merchant_id, [CARD]) == before  # no money moved
    status, body = operator_for(http, cs, world.merchant_id).call("GET", "/cards/v1/exceptions")
    assert [(e["txn"], e["card"], e["amount_fen"], e["code"], e["status"]) for e in body["exceptions"]] == [
        (1, CARD, amount, code, "open")]


def test_policy_book_books_a_lost_card_and_an_overdraft(edge, world, cs, clock) -> None:
    cs.rules.put_rules(world.merchant_id, {"offline_policy": "book"}, None, clock.now())
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    issue_card(cs, world.merchant_id, "40000002", cash_fen=1_000)
    cs.admin.report_lost(world.merchant_id, "40000002")
    body = _upload(edge, world, [_rec(1, 1_500), _rec(2, 300, card="40000002"), _rec(3, 100, card="99")])[1]
    assert (body["accepted"], body["rejected"]) == ([1, 2], [{"txn": 3, "code": "ERR001"}])
    cards = card_snapshot(world.merchant_id, [CARD, "40000002"])["cards"]
    assert (cards[CARD]["cash_fen"], cards["40000002"]["cash_fen"]) == (-500, 700)
    check_card_ledger(world.merchant_id, allow_negative=True)  # the overdraft the merchant's policy allows


def test_the_merchant_books_or_dismisses_an_exception(edge, world, cs, http) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    _upload(edge, world, [_rec(1, 1_200), _rec(2, 50, card="99")])
    op = operator_for(http, cs, world.merchant_id)
    status, booked = op.call("POST", f"/cards/v1/exceptions/{world.terminal_id}/1", {"action": "book"})
    assert (status, booked["code"], booked["balance_fen"]) == (200, "OK", -200)
    assert op.call("POST", f"/cards/v1/exceptions/{world.terminal_id}/1", {"action": "book"})[0] == 409
    assert op.call("POST", f"/cards/v1/exceptions/{world.terminal_id}/2", {"action": "book"})[0] == 409  # no card
    assert op.call("POST", f"/cards/v1/exceptions/{world.terminal_id}/2", {"action": "dismiss"})[0] == 200
    assert op.call("GET", "/cards/v1/exceptions")[1]["exceptions"] == []
    assert _upload(edge, world, [_rec(1, 1_200)])[1]["rejected"] == [{"txn": 1, "code": "ERR007"}]  # no rebooking
    check_card_ledger(world.merchant_id, allow_negative=True)
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == -200


def test_a_txn_used_for_another_request_is_kept_as_a_conflict(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    _upload(edge, world, [_rec(1, 300)])
    assert _upload(edge, world, [_rec(1, 400)])[1]["rejected"] == [{"txn": 1, "code": "CONFLICT"}]
    assert [e.code for e in cs.exceptions.of_merchant(world.merchant_id)] == ["CONFLICT"]
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == 700


@pytest.mark.parametrize("records", [
    [_rec(n, 1) for n in range(51)],
    [{"txn": 1, "card": CARD, "amount_fen": "1", "ts": 1}],
    [{"txn": 1, "card": CARD, "ts": 1}],
    ["not a record"],
    "records",
])
def test_malformed_batches_change_nothing(edge, world, cs, records) -> None:  # type: ignore[no-untyped-def]
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    answer = edge.post(OFF, {"terminal_id": world.terminal_id, "records": records})
    assert answer.status_code == 400
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before
    assert cs.exceptions.of_merchant(world.merchant_id) == []
