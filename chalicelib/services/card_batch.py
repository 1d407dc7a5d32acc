"""A batch of card payments from one edge agent (``POST /edge/v1/cards/pay-batch``).

Each item is answered exactly as ``/edge/v1/cards/pay`` would answer it alone: the same
:class:`~chalicelib.services.cards.CardPaymentService` decides and books it, in its own
TransactWriteItems (card update + ledger entries + the (terminal, txn) dedupe record), with the
same repeat behaviour per (terminal, txn). What the batch saves is the reads: the cards and dedupe
records of every item come in ONE BatchGetItem (per 100 keys) instead of one per payment, and the
edge request (signature, nonce) is checked once for the batch.

Items are applied in the order given. Two items on one card: after the first books, the card's
prefetched state is stale, so the second reads it again (one more BatchGetItem) rather than
failing a transaction on it. A stale read is never a money risk anyway: every payment's
transaction is conditioned on the card being exactly as read.

DynamoDB calls for a batch of N payments on N different cards, all booked: 1 BatchGetItem (while
2N <= 100 keys) + N TransactWriteItems (+ the nonce's PutItem, claimed by the API layer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.config import Settings
from chalicelib.domain.cards import CardState
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import DomainError
from chalicelib.domain.money import MAX_ORDER_FEN
from chalicelib.services.cards import CardPaymentService, txn_key
from chalicelib.store.canteen_rules import CanteenRulesStore
from chalicelib.store.cards import Booked, CardStore, StoredAnswer, card_key
from chalicelib.store.directory import Directory, TerminalInfo

__all__ = ["BatchItem", "CardBatchService", "ItemAnswer", "PrefetchedCards"]

Read = tuple[CardState | None, StoredAnswer | None]


@dataclass(frozen=True)
class BatchItem:
    """One valid payment of a batch (its terminal already checked to be the calling agent's)."""

    terminal: TerminalInfo
    txn: int
    card_no: str
    amount_fen: int


@dataclass(frozen=True)
class ItemAnswer:
    """What the single endpoint would answer: its HTTP status and its JSON body."""

    status: int
    body: dict[str, Any]

    @classmethod
    def of_error(cls, error: DomainError) -> "ItemAnswer":
        return cls(error.http_status, {"ok": False, "code": error.code, "message": error.message})

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body}


class PrefetchedCards(CardStore):
    """The card store, answering ``read_for_payment`` from a batch's one BatchGetItem.

    A prefetched read is used once; a card booked since is read again (its prefetched state is
    stale). Everything else is the real store's."""

    def __init__(self, settings: Settings, reads: dict[tuple[str, str, str], Read]) -> None:
        super().__init__(settings)
        self._reads = dict(reads)
        self._booked_cards: set[str] = set()

    def read_for_payment(self, merchant_id: str, card_no: str, dedupe_key: str) -> Read:
        read = self._reads.pop((merchant_id, card_no, dedupe_key), None)
        if read is None or card_key(merchant_id, card_no) in self._booked_cards:
            return super().read_for_payment(merchant_id, card_no, dedupe_key)
        return read

    def book_payment(self, card: CardState, *args: Any, **kwargs: Any) -> Any:
        outcome = super().book_payment(card, *args, **kwargs)
        if isinstance(outcome, Booked):
            self._booked_cards.add(card_key(card.merchant_id, card.card_no))
        return outcome


class CardBatchService:
    def __init__(self, settings: Settings, cards: CardStore, rules: CanteenRulesStore, directory: Directory,
                 clock: Clock, max_attempts: int = 16) -> None:
        self._settings = settings
        self._cards = cards
        self._rules = rules
        self._directory = directory
        self._clock = clock
        self._max_attempts = max_attempts

    def pay(self, items: list[BatchItem]) -> list[ItemAnswer]:
        """The answer to each item, in order. The edge request's nonce is the caller's business."""
        wanted = [(i.terminal.merchant_id, i.card_no, txn_key(i.terminal.terminal_id, i.txn))
                  for i in items if 0 < i.amount_fen <= MAX_ORDER_FEN]  # the single path reads no card otherwise
        reads = self._cards.read_many_for_payment(wanted) if wanted else {}
        payments = CardPaymentService(PrefetchedCards(self._settings, reads), self._rules, self._directory,
                                      self._clock, max_attempts=self._max_attempts)
        answers = []
        for item in items:
            try:
                answer = payments.pay(item.terminal, item.txn, item.card_no, item.amount_fen)
            except DomainError as error:  # e.g. the txn was used for another request (409)
                answers.append(ItemAnswer.of_error(error))
            else:
                answers.append(ItemAnswer(200, {**answer, "txn": item.txn}))
        return answers
