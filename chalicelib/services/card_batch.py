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

Concurrency: items that share nothing in DynamoDB are booked at the same time, on a small pool of
threads (Settings.card_batch_workers), so a batch of 50 costs a few round trips of wall time, not 50.
Items that share an item are one group, booked one after another in the order given, by one thread:
the same card, the same (terminal, txn) (its dedupe record: which of two claims of a txn wins must not
depend on thread timing), and the same merchant-day settlement totals shard (store/settlement_totals.py:
every card booking ADDs to one of 4 items per merchant-day, keyed by the card's account; DynamoDB
cancels a transaction that touches an item another transaction holds (TransactionConflict), which the
card store does not retry). So a one-merchant batch runs at most 4 groups at once. Each item's answer,
the balances, the ledger and the DynamoDB calls are those of the sequential order: the directory and
rules reads that the first item of a merchant would make are made once, before the groups start, so
no two threads load the same cache entry. An unexpected error (not a DomainError) in one group fails
the request (500) as it did, but the other groups may have booked by then: each booking carries its
dedupe record, so the edge agent's retry of the batch gets their first answers.

DynamoDB calls for a batch of N payments on N different cards, all booked: 1 BatchGetItem (while
2N <= 100 keys) + N TransactWriteItems (+ the nonce's PutItem, claimed by the API layer).
"""
from __future__ import annotations

import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from chalicelib.config import Settings
from chalicelib.domain.cards import CardState
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import DomainError
from chalicelib.domain.money import MAX_ORDER_FEN
from chalicelib.domain.settlement_totals import shard_of
from chalicelib.services.cards import CardPaymentService, txn_key
from chalicelib.store.canteen_rules import CanteenRulesStore
from chalicelib.store.cards import Booked, CardStore, StoredAnswer, card_key
from chalicelib.store.directory import Directory, TerminalInfo

__all__ = ["BatchItem", "CardBatchService", "ItemAnswer", "PrefetchedCards", "batch_pool", "booking_groups"]

Read = tuple[CardState | None, StoredAnswer | None]
ReadKey = tuple[str, str, str]  # (merchant_id, card_no, dedupe_key)


@dataclass(frozen=True)
class BatchItem:
    """One valid payment of a batch (its terminal already checked to be the calling agent's)."""

    terminal: TerminalInfo
    txn: int
    card_no: str
    amount_fen: int

    def read_key(self) -> ReadKey:
        return self.terminal.merchant_id, self.card_no, txn_key(self.terminal.terminal_id, self.txn)

    def reads_a_card(self) -> bool:
        return 0 < self.amount_fen <= MAX_ORDER_FEN  # the single path reads no card otherwise


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
    """`store`, answering ``read_for_payment`` from a batch's one BatchGetItem.

    A prefetched read is used once; a card booked since is read again (its prefetched state is
    stale). Everything else goes to `store`. Shared by the batch's threads: each group of items
    (booking_groups) touches only its own cards' and dedupe keys' entries, and a single dict pop or
    set add is atomic in CPython, so the groups never see each other's entries."""

    def __init__(self, store: CardStore, settings: Settings, reads: dict[ReadKey, Read]) -> None:
        super().__init__(settings)
        self._store = store
        self._reads = dict(reads)
        self._booked_cards: set[str] = set()

    def read_for_payment(self, merchant_id: str, card_no: str, dedupe_key: str) -> Read:
        read = self._reads.pop((merchant_id, card_no, dedupe_key), None)
        if read is None or card_key(merchant_id, card_no) in self._booked_cards:
            return self._store.read_for_payment(merchant_id, card_no, dedupe_key)
        return read

    def book_payment(self, card: CardState, *args: Any, **kwargs: Any) -> Any:
        outcome = self._store.book_payment(card, *args, **kwargs)
        if isinstance(outcome, Booked):
            self._booked_cards.add(card_key(card.merchant_id, card.card_no))
        return outcome


def booking_groups(items: list[BatchItem], reads: dict[ReadKey, Read]) -> list[list[int]]:
    """The items' indexes in groups that share no DynamoDB item, each in the order given; groups
    ordered by their first item. Linked: one card, one (terminal, txn), one settlement totals shard
    (the merchant and the shard of the prefetched card's account, as add_card_totals picks it)."""
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, ...], int] = {}
    for index, item in enumerate(items):
        merchant_id, card_no, dedupe_key = item.read_key()
        keys: list[tuple[str, ...]] = [("card", card_key(merchant_id, card_no)), ("txn", dedupe_key)]
        card = reads.get(item.read_key(), (None, None))[0]
        if card is not None:
            keys.append(("totals", merchant_id, str(shard_of(card.account_id))))
        for key in keys:
            first = owner.setdefault(key, index)
            a, b = root(first), root(index)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the group's root is its first item
    groups: dict[int, list[int]] = {}
    for index in range(len(items)):
        groups.setdefault(root(index), []).append(index)
    return list(groups.values())


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def batch_pool(workers: int) -> ThreadPoolExecutor:
    """The container's pool of `workers` booking threads, created on first use.

    Per container rather than per request: a Lambda container serves one request at a time, so its
    one pool is never shared by two batches there, and its threads stay warm between batches (no
    thread start and join on the 800 ms path). A local server serving requests at once shares it
    safely: each batch waits only for its own tasks, and a task never waits on the pool."""
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="card-batch")
        return pool


class CardBatchService:
    """`pool`: where groups are booked; None: the container's batch_pool of settings.card_batch_workers
    (with 1 worker, everything is booked in the calling thread)."""

    def __init__(self, settings: Settings, cards: CardStore, rules: CanteenRulesStore, directory: Directory,
                 clock: Clock, max_attempts: int = 16, pool: Executor | None = None) -> None:
        self._settings = settings
        self._cards = cards
        self._rules = rules
        self._directory = directory
        self._clock = clock
        self._max_attempts = max_attempts
        self._pool = pool

    def pay(self, items: list[BatchItem]) -> list[ItemAnswer]:
        """The answer to each item, in order. The edge request's nonce is the caller's business."""
        wanted = [i.read_key() for i in items if i.reads_a_card()]
        reads = self._cards.read_many_for_payment(wanted) if wanted else {}
        self._warm_caches(items)
        payments = CardPaymentService(PrefetchedCards(self._cards, self._settings, reads), self._rules,
                                      self._directory, self._clock, max_attempts=self._max_attempts)
        answers: list[ItemAnswer | None] = [None] * len(items)

        def book(group: list[int]) -> None:  # one group, in order, in one thread
            for index in group:
                answers[index] = self._answer(payments, items[index])  # each index written by one thread

        groups = booking_groups(items, reads)
        pool = self._pool or (batch_pool(self._settings.card_batch_workers)
                              if self._settings.card_batch_workers > 1 else None)
        if pool is None or len(groups) < 2:
            for group in groups:
                book(group)
        else:
            for future in [pool.submit(book, group) for group in groups]:
                future.result()  # waits for all; re-raises a group's unexpected error (500)
        missing = [index for index, answer in enumerate(answers) if answer is None]
        if missing:  # every group ran to its end or raised above: a bug, never a silent short answer
            raise RuntimeError(f"card batch: items {missing} not answered")
        return answers  # type: ignore[return-value]

    @staticmethod
    def _answer(payments: CardPaymentService, item: BatchItem) -> ItemAnswer:
        try:
            answer = payments.pay(item.terminal, item.txn, item.card_no, item.amount_fen)
        except DomainError as error:  # e.g. the txn was used for another request (409)
            return ItemAnswer.of_error(error)
        return ItemAnswer(200, {**answer, "txn": item.txn})

    def _warm_caches(self, items: list[BatchItem]) -> None:
        """Read, in this thread, the merchant and canteen rules the payments will ask the (per
        container, TTL) caches for, as the first payment of each merchant would: otherwise two threads
        missing the same entry at once would both load it (one GetItem more than sequentially). Not
        exact in two rare cases: a merchant not found is not cached, so each payment reads it again (one
        read more than sequentially), and an entry expiring mid-batch may be reloaded by several threads."""
        for merchant_id in dict.fromkeys(i.terminal.merchant_id for i in items if i.reads_a_card()):
            _ignore_domain_errors(lambda: self._warm_merchant(merchant_id))

    def _warm_merchant(self, merchant_id: str) -> None:
        merchant = self._directory.merchant(merchant_id)
        if merchant is not None and merchant.status == "active":  # the single path reads rules then
            self._rules.rules(merchant_id)


def _ignore_domain_errors(read: Callable[[], None]) -> None:
    """A refusal here is the payment's to give (it reads again and answers it)."""
    try:
        read()
    except DomainError:
        pass
