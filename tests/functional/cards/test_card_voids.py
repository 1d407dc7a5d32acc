"""POST /edge/v1/cards/void: a card payment the edge agent refused after an uncertain online attempt.
Booked -> given back by a reversal (balances, counters and ledger asserted); not booked -> the txn is
claimed as voided and the late original books nothing; repeats answer the same; bad input changes nothing;
a card whose write keeps conflicting answers 503 "card busy" and nothing changes."""
from __future__ import annotations

import dataclasses
import json

import pytest

from chalicelib.services.card_container import CardServices, install_card_services
from chalicelib.services.card_voids import ATTEMPTS, CardVoidService
from chalicelib.store.cards import CardStore, Stale
from chalicelib.store.connection import dynamodb_clients
from chalicelib.store.directory import TerminalInfo
from chalicelib.store.models import DedupeModel
from chalicelib.store.txn_voids import CardVoidStore
from devstack.call_counter import DynamoDBCallCounter
from tests.support.card_world import card_snapshot, grant_subsidy, issue_card, operator_for
from tests.support.ledger_invariants import check_card_ledger
from tests.support.world import seed_world

PAY, VOID = "/edge/v1/cards/pay", "/edge/v1/cards/void"
CARD = "10000001"


def pay(edge, world, txn: int, amount_fen: int, card: str = CARD):  # type: ignore[no-untyped-def]
    answer = edge.post(PAY, {"terminal_id": world.terminal_id, "txn": txn, "card": card, "amount_fen": amount_fen,
                             "ts": int(edge.clock.now())})
    return answer.status_code, json.loads(answer.body)


def void(edge, terminal_id: str, txn: object):  # type: ignore[no-untyped-def]
    answer = edge.post(VOID, {"terminal_id": terminal_id, "txn": txn})
    return answer.status_code, json.loads(answer.body)


def _state(world) -> dict:  # type: ignore[no-untyped-def]
    return card_snapshot(world.merchant_id, [CARD], world.terminal_id)


def test_a_booked_payment_is_reversed_once(edge, world, cs, clock) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    grant_subsidy(cs, world.merchant_id, CARD, 200)
    assert pay(edge, world, 7, 500)[1]["balance_fen"] == 700
    paid = _state(world)["cards"][CARD]
    assert (paid["subsidy_fen"], paid["cash_fen"], paid["day_count"], paid["day_fen"]) == (0, 700, 1, 500)

    clock.advance(60)
    status, body = void(edge, world.terminal_id, 7)
    assert status == 200, body
    assert (body["ok"], body["outcome"], body["terminal_id"], body["txn"]) == (True, "reversed", world.terminal_id, 7)
    assert (body["reversed_fen"], body["balance_fen"], body["cash_fen"], body["subsidy_fen"]) == (500, 1_200, 1_000, 200)
    card = _state(world)["cards"][CARD]
    assert (card["subsidy_fen"], card["cash_fen"]) == (200, 1_000)  # each wallet gets back what it paid
    assert (card["day_count"], card["day_fen"]) == (0, 0)  # the holder may pay again within the day's limits
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["REVERSAL"], totals.by_kind["CARD_PAYMENT"], totals.balances_fen) == (500, -500, 1_200)
    record = DedupeModel.get(f"reversal#{world.terminal_id}#7", consistent_read=True)
    assert record.kind == "card_void_reversal"

    after = _state(world)
    clock.advance(60)
    assert void(edge, world.terminal_id, 7) == (status, body)  # a repeat: the same answer, nothing booked
    op = operator_for(edge.http, cs, world.merchant_id)
    status_op, reversal = op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 7})
    assert (status_op, reversal["reversed_fen"], reversal["balance_fen"]) == (200, 500, 1_200)  # the void's answer
    assert _state(world) == after
    assert check_card_ledger(world.merchant_id).by_kind["REVERSAL"] == 500


def test_a_payment_the_operator_reversed_first_is_not_given_back_twice(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    pay(edge, world, 8, 300)
    op = operator_for(edge.http, cs, world.merchant_id)
    assert op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 8})[0] == 200
    before = _state(world)
    status, body = void(edge, world.terminal_id, 8)
    assert (status, body["outcome"], body["reversed_fen"], body["balance_fen"]) == (200, "reversed", 300, 1_000)
    assert _state(world) == before
    assert check_card_ledger(world.merchant_id).by_kind["REVERSAL"] == 300


def test_nothing_booked_is_voided_and_the_late_original_books_nothing(edge, world, cs, clock) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    status, body = void(edge, world.terminal_id, 9)
    assert (status, body) == (200, {"ok": True, "terminal_id": world.terminal_id, "txn": 9, "outcome": "never_booked"})
    assert void(edge, world.terminal_id, 9) == (status, body)  # a repeat
    before = _state(world)
    assert before["txn_dedupe"] == [f"txn#{world.terminal_id}#9"]

    clock.advance(5)
    status, late = pay(edge, world, 9, 500)  # the original request arrives after all
    assert (status, late["ok"], late["code"], late["msg"], late["balance_fen"]) == (200, False, "ERR012", "网络故障",
                                                                                   None)
    assert pay(edge, world, 9, 400)[1]["code"] == "ERR012"  # whatever it carries
    assert _state(world) == before  # nothing booked, the card untouched
    totals = check_card_ledger(world.merchant_id)
    assert (totals.payments_booked, totals.balances_fen) == (0, 1_000)
    assert pay(edge, world, 10, 500)[1]["ok"] is True  # the next txn pays as usual


def test_a_foreign_terminal_is_refused_and_nothing_changes(edge, container, world, cs) -> None:
    other = seed_world(container, terminal_count=1)
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    pay(edge, world, 11, 500)
    before = (_state(world), card_snapshot(other.merchant_id, [], other.terminal_id))
    for terminal_id in (other.terminal_id, "T-NOBODY"):
        status, body = void(edge, terminal_id, 11)
        assert (status, body["code"]) == (404, "NOT_FOUND")
    assert (_state(world), card_snapshot(other.merchant_id, [], other.terminal_id)) == before


@pytest.mark.parametrize("payload", [
    {"txn": "11"}, {"txn": -1}, {"txn": 1.5}, {"txn": True}, {"txn": None}, {"txn": 2**63},
    {"terminal_id": 5, "txn": 11}, {},
])
def test_malformed_void_changes_nothing(edge, world, cs, payload) -> None:  # type: ignore[no-untyped-def]
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    pay(edge, world, 11, 500)
    before = _state(world)
    answer = edge.post(VOID, {"terminal_id": world.terminal_id, **payload})
    assert answer.status_code == 400
    assert json.loads(answer.body)["code"] == "INVALID_REQUEST"
    assert _state(world) == before


def test_a_txn_that_is_not_a_card_payment_is_a_conflict(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    assert edge.post("/edge/v1/orders/qr", {"terminal_id": world.terminal_id, "txn": 12, "amount_fen": 100}
                     ).status_code == 200
    before = _state(world)
    status, body = void(edge, world.terminal_id, 12)
    assert (status, body["code"]) == (409, "CONFLICT")
    assert _state(world) == before


def test_a_cancelled_card_cannot_be_given_back_here(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    pay(edge, world, 13, 500)
    cs.admin.cancel(world.merchant_id, CARD)  # the cash left at the counter
    before = _state(world)
    status, body = void(edge, world.terminal_id, 13)
    assert (status, body["code"]) == (409, "CONFLICT")
    assert _state(world) == before
    check_card_ledger(world.merchant_id)


def test_dynamodb_calls_per_void(edge, world, cs, settings) -> None:
    """A void is rare, but bounded: a few reads and one write; a repeat only reads."""
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    pay(edge, world, 14, 500)
    terminal = TerminalInfo(world.terminal_id, world.agent_id, world.merchant_id, world.site_id, True)
    service = CardVoidService(cs.cards, CardVoidStore(), cs.container.clock)
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    assert service.void(terminal, 15)["outcome"] == "never_booked"
    assert counter.snapshot() == {"GetItem": 1, "PutItem": 1}
    counter.reset()
    assert service.void(terminal, 15)["outcome"] == "never_booked"
    assert counter.snapshot() == {"GetItem": 1}
    counter.reset()
    assert service.void(terminal, 14)["outcome"] == "reversed"
    # the txn's record, the reversal's (absent), the payment's entries, the account's live card, one transaction
    assert counter.snapshot() == {"GetItem": 3, "Query": 2, "TransactWriteItems": 1}
    counter.reset()
    assert service.void(terminal, 14)["outcome"] == "reversed"
    assert counter.snapshot() == {"GetItem": 2}
    check_card_ledger(world.merchant_id)


class MovedBeforeEveryWrite(CardStore):
    """The real store, with the card's money moved by someone else between each read and the void's write:
    the credit goes to DynamoDB on a card whose cash differs by one fen from the stored one, so the real
    transaction's condition fails and DynamoDB hands back the card as it is (Stale), every time."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.outcomes: list[object] = []

    def credit(self, card, deltas, movement,  # type: ignore[no-untyped-def]
               extra_actions=None, extra_condition=None, also=None):
        read_before_the_other_write = dataclasses.replace(card, cash_fen=card.cash_fen + 1)
        outcome = super().credit(read_before_the_other_write, deltas, movement, extra_actions, extra_condition, also)
        self.outcomes.append(outcome)
        return outcome


class BusyCardServices(CardServices):
    """The real card services, with their card store replaced (installed for the route to use)."""

    def __init__(self, container, cards: CardStore) -> None:  # type: ignore[no-untyped-def]
        super().__init__(container)
        self._busy_cards = cards

    @property  # type: ignore[override]
    def cards(self) -> CardStore:
        return self._busy_cards


def test_a_card_that_stays_busy_answers_503_and_nothing_changes(edge, world, cs, container) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    assert pay(edge, world, 16, 500)[1]["balance_fen"] == 500
    before = _state(world)
    busy = MovedBeforeEveryWrite(container.settings)

    install_card_services(BusyCardServices(container, busy))  # what the route builds its service from
    try:
        status, body = void(edge, world.terminal_id, 16)
    finally:
        install_card_services(cs)
    assert status == 503, body
    assert (body["code"], body["message"]) == ("ERR012", "the card is busy; try again")
    assert len(busy.outcomes) == ATTEMPTS and all(isinstance(o, Stale) for o in busy.outcomes)
    assert _state(world) == before  # the card, its ledger and the txn records as they were
    assert _state(world)["cards"][CARD]["cash_fen"] == 500
    with pytest.raises(DedupeModel.DoesNotExist):
        DedupeModel.get(f"reversal#{world.terminal_id}#16", consistent_read=True)  # no reversal recorded
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["REVERSAL"], totals.by_kind["CARD_PAYMENT"], totals.balances_fen) == (0, -500, 500)

    # Once the card is quiet, the same void goes through (the agent asks again next round).
    status, body = void(edge, world.terminal_id, 16)
    assert (status, body["outcome"], body["reversed_fen"], body["balance_fen"]) == (200, "reversed", 500, 1_000)
    assert check_card_ledger(world.merchant_id).balances_fen == 1_000
