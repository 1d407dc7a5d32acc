"""A payment whose read went stale: decided again on the card DynamoDB hands back, without another
read; a card kept busy past max_attempts answers ERR012 and books nothing. DynamoDB calls counted."""
from __future__ import annotations

import json

from chalicelib.services.cards import CardPaymentService
from chalicelib.store.cards import CardStore
from chalicelib.store.connection import dynamodb_clients
from chalicelib.store.directory import TerminalInfo
from devstack.call_counter import DynamoDBCallCounter
from tests.support.card_world import card_snapshot, issue_card
from tests.support.ledger_invariants import check_card_ledger

CARD = "10000001"


class RechargeAfterRead(CardStore):
    """The real store, with a counter recharge landing between a payment's read and its write."""

    def __init__(self, settings, admin, merchant_id: str, times: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.admin, self.merchant_id, self.left = admin, merchant_id, times

    def read_for_payment(self, merchant_id, card_no, dedupe_key):  # type: ignore[no-untyped-def]
        read = super().read_for_payment(merchant_id, card_no, dedupe_key)
        if self.left:
            self.left -= 1
            self.admin.recharge(self.merchant_id, card_no, 100, f"race-{self.left}")
        return read

    def book_payment(self, card, charge, movement):  # type: ignore[no-untyped-def]
        outcome = super().book_payment(card, charge, movement)
        if self.left:  # keep the card busy: another recharge before the next attempt
            self.left -= 1
            self.admin.recharge(self.merchant_id, card.card_no, 100, f"race-{self.left}")
        return outcome


def _terminal(world) -> TerminalInfo:  # type: ignore[no-untyped-def]
    return TerminalInfo(world.terminal_id, world.agent_id, world.merchant_id, world.site_id, True)


def _service(container, cs, world, races: int, attempts: int) -> CardPaymentService:  # type: ignore[no-untyped-def]
    store = RechargeAfterRead(container.settings, cs.admin, world.merchant_id, races)
    return CardPaymentService(store, cs.rules, container.directory, container.clock, max_attempts=attempts)


def test_a_stale_read_is_decided_again_on_the_returned_card(container, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    answer = _service(container, cs, world, races=1, attempts=2).pay(_terminal(world), 1, CARD, 300)
    assert answer["code"] == "OK" and answer["balance_fen"] == 1_000 + 100 - 300
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == 800
    check_card_ledger(world.merchant_id)


def test_err012_when_the_card_stays_busy_books_nothing(container, world, cs) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    answer = _service(container, cs, world, races=2, attempts=2).pay(_terminal(world), 1, CARD, 300)
    assert (answer["ok"], answer["code"], answer["msg"]) == (False, "ERR012", "网络故障")
    state = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    assert state["cards"][CARD]["cash_fen"] == 1_200  # the two recharges, no payment
    assert state["txn_dedupe"] == []
    assert check_card_ledger(world.merchant_id).payments_booked == 0


def test_one_read_and_one_transaction_per_payment(container, world, cs, settings) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    service = cs.payments
    service.pay(_terminal(world), 1, CARD, 100)  # warms the directory and rules caches
    counter.reset()
    assert service.pay(_terminal(world), 2, CARD, 100)["code"] == "OK"
    assert counter.snapshot() == {"BatchGetItem": 1, "TransactWriteItems": 1}
    counter.reset()
    assert service.pay(_terminal(world), 2, CARD, 100)["code"] == "OK"  # a repeat: the read answers it
    assert counter.snapshot() == {"BatchGetItem": 1}
    counter.reset()
    assert service.pay(_terminal(world), 3, CARD, 5_000)["code"] == "ERR007"  # a refusal writes nothing
    assert counter.snapshot() == {"BatchGetItem": 1}


def test_through_the_api_a_booked_payment_claims_its_nonce_in_its_transaction(edge, world, cs, settings) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    body = {"terminal_id": world.terminal_id, "card": CARD, "amount_fen": 100, "ts": 1}
    edge.post("/edge/v1/cards/pay", {**body, "txn": 1})
    counter.reset()
    assert json.loads(edge.post("/edge/v1/cards/pay", {**body, "txn": 2}).body)["code"] == "OK"
    assert counter.snapshot() == {"BatchGetItem": 1, "TransactWriteItems": 1}
    counter.reset()  # a repeat and a refusal write no transaction: the nonce gets its own PutItem
    assert json.loads(edge.post("/edge/v1/cards/pay", {**body, "txn": 2}).body)["code"] == "OK"
    assert counter.snapshot() == {"BatchGetItem": 1, "PutItem": 1}
    counter.reset()
    assert json.loads(edge.post("/edge/v1/cards/pay", {**body, "txn": 3, "amount_fen": 5_000}).body)["code"] == "ERR007"
    assert counter.snapshot() == {"BatchGetItem": 1, "PutItem": 1}
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == 800
