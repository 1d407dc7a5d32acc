"""The edge request nonce of a card payment: claimed in the payment's transaction when it books, with
its own PutItem otherwise; a replayed signed request is refused 401 and changes nothing."""
from __future__ import annotations

import json

from chalicelib.domain import edge_auth
from chalicelib.store.dedupe import NonceClaim
from tests.support.card_world import card_snapshot, issue_card
from tests.support.edge_client import signed_headers
from tests.support.ledger_invariants import check_card_ledger

PAY = "/edge/v1/cards/pay"
CARD = "10000001"


def signed_pay(http, world, clock, nonce: str, txn: int, amount_fen: int):  # type: ignore[no-untyped-def]
    """The same signed request each time it is called with the same arguments (a replay)."""
    body = json.dumps({"terminal_id": world.terminal_id, "txn": txn, "card": CARD, "amount_fen": amount_fen,
                       "ts": 1}).encode()
    headers = signed_headers(world.agent_id, world.agent_secret, "POST", PAY, body, clock.now(), nonce=nonce)
    answer = http.post(PAY, headers=headers, body=body)
    return answer.status_code, json.loads(answer.body)


def _nonce_used(status: int, body: dict) -> bool:
    return status == 401 and body["message"] == "nonce already used"


def test_a_replayed_booked_payment_is_refused_and_changes_nothing(http, world, cs, clock) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    status, first = signed_pay(http, world, clock, "a" * 24, 1, 300)
    assert status == 200 and first["code"] == "OK" and first["balance_fen"] == 700
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    assert _nonce_used(*signed_pay(http, world, clock, "a" * 24, 1, 300))
    after = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    assert after == before
    assert after["cards"][CARD]["cash_fen"] == 700 and after["txn_dedupe"] == [f"txn#{world.terminal_id}#1"]
    totals = check_card_ledger(world.merchant_id)
    assert totals.balances_fen == 700 and totals.payments_booked == 1


def test_a_nonce_taken_before_the_transaction_is_refused_and_books_nothing(http, world, cs, clock, container) -> None:
    """The nonce condition of the payment's transaction: its nonce was claimed between the request's
    authentication and its write (a concurrent replay), so the transaction is cancelled."""
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    assert container.dedupe.claim_nonce(world.agent_id, "b" * 24, clock.now(), edge_auth.MAX_SKEW_S)
    assert _nonce_used(*signed_pay(http, world, clock, "b" * 24, 1, 300))
    state = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    assert state["cards"][CARD]["cash_fen"] == 1_000 and state["txn_dedupe"] == []
    totals = check_card_ledger(world.merchant_id)
    assert totals.balances_fen == 1_000 and totals.payments_booked == 0


def test_a_refusal_claims_its_nonce_and_its_replay_is_refused(http, world, cs, clock, container) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    status, body = signed_pay(http, world, clock, "c" * 24, 1, 5_000)
    assert status == 200 and body["code"] == "ERR007"
    record = container.dedupe.get(NonceClaim(world.agent_id, "c" * 24, 0, 0).key)
    assert record is not None and record.kind == "nonce"
    assert record.expires_at == clock.now() + 2 * edge_auth.MAX_SKEW_S
    assert _nonce_used(*signed_pay(http, world, clock, "c" * 24, 1, 5_000))
    state = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    assert state["cards"][CARD]["cash_fen"] == 1_000 and state["txn_dedupe"] == []
    assert check_card_ledger(world.merchant_id).payments_booked == 0


def test_a_booked_payment_writes_the_same_nonce_record(http, world, cs, clock, container) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    assert signed_pay(http, world, clock, "d" * 24, 1, 300)[1]["code"] == "OK"
    record = container.dedupe.get(NonceClaim(world.agent_id, "d" * 24, 0, 0).key)
    assert record is not None and record.kind == "nonce"
    assert (record.created_at, record.expires_at) == (clock.now(), clock.now() + 2 * edge_auth.MAX_SKEW_S)
    # After its window the nonce may be used again, in the transaction as with the PutItem.
    clock.advance(2 * edge_auth.MAX_SKEW_S + 1)
    status, body = signed_pay(http, world, clock, "d" * 24, 2, 300)
    assert status == 200 and body["code"] == "OK" and body["balance_fen"] == 400
    assert check_card_ledger(world.merchant_id).balances_fen == 400


def test_a_bad_request_claims_its_nonce_and_its_replay_is_refused(http, world, cs, clock, container) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    body = json.dumps({"terminal_id": "no-such-terminal", "txn": 1, "card": CARD, "amount_fen": 100,
                       "ts": 1}).encode()
    headers = signed_headers(world.agent_id, world.agent_secret, "POST", PAY, body, clock.now(), nonce="e" * 24)
    assert http.post(PAY, headers=headers, body=body).status_code == 404
    assert container.dedupe.get(NonceClaim(world.agent_id, "e" * 24, 0, 0).key) is not None
    replay = http.post(PAY, headers=headers, body=body)
    assert _nonce_used(replay.status_code, json.loads(replay.body))
    state = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    assert state["cards"][CARD]["cash_fen"] == 1_000 and state["txn_dedupe"] == []
