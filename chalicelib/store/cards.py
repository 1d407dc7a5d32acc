"""Card accounts in DynamoDB: the payment read and the money transactions of a card.

A payment is one BatchGetItem (the card item and the (terminal, txn) dedupe record) and one
TransactWriteItems: the card update, conditioned on exactly the state the decision was made on
(status, class, both wallets, the limit counters), the ledger entries and the dedupe record, and
through the edge API the request's nonce record (no PutItem of its own for a booked payment). A
failed condition returns the current items (ReturnValuesOnConditionCheckFailure=ALL_OLD), so a
stale decision is retried on fresh state without another read, and a repeat finds its first answer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.domain.canteen_decision import Charge, Rollback
from chalicelib.domain.cards import CardState, CardStatus, Wallet
from chalicelib.store.card_models import CardModel
from chalicelib.store.connection import transaction_connection
from chalicelib.store.dedupe import NonceClaim
from chalicelib.store.models import DedupeModel, LedgerEntryModel
from chalicelib.store.orders import ledger_entry
from chalicelib.store.settlement_totals import add_card_totals


def card_key(merchant_id: str, card_no: str) -> str:
    return f"{merchant_id}#{card_no}"


def ledger_account(account_id: str) -> str:
    return f"card#{account_id}"


def to_state(item: CardModel) -> CardState:
    return CardState(
        merchant_id=item.merchant_id, card_no=item.card_no, account_id=item.account_id,
        holder_id=item.holder_id, class_code=item.class_code, status=CardStatus(item.status),
        cash_fen=int(item.cash_fen or 0), subsidy_fen=int(item.subsidy_fen or 0),
        day=item.day, day_fen=int(item.day_fen or 0), day_count=int(item.day_count or 0),
        meal=item.meal, meal_fen=int(item.meal_fen or 0), meal_count=int(item.meal_count or 0),
        subsidy_month=item.subsidy_month,
    )


def _number(item: dict, name: str) -> int:
    value = item.get(name)
    if value is None:
        return 0
    try:
        return int(value["N"])
    except ValueError:  # not a plain integer string: what NumberAttribute would read, as int
        return int(json.loads(value["N"]))


def _text(item: dict, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value["S"]


def state_from_raw(item: dict) -> CardState:
    """`to_state` of a raw DynamoDB card item (a BatchGetItem answer) without building a CardModel
    first: the payment read's hot path (about 0.06 ms of CPU less per read, bench/cards). Same
    defaults as CardModel's attributes; tests/unit/cards/test_card_state_from_raw.py keeps them equal."""
    return CardState(
        merchant_id=item["merchant_id"]["S"], card_no=item["card_no"]["S"], account_id=item["account_id"]["S"],
        holder_id=item["holder_id"]["S"], class_code=item.get("class_code", {"S": "default"})["S"],
        status=CardStatus(item["status"]["S"]), cash_fen=_number(item, "cash_fen"),
        subsidy_fen=_number(item, "subsidy_fen"), day=_text(item, "day"), day_fen=_number(item, "day_fen"),
        day_count=_number(item, "day_count"), meal=_text(item, "meal"), meal_fen=_number(item, "meal_fen"),
        meal_count=_number(item, "meal_count"), subsidy_month=_text(item, "subsidy_month"),
    )


@dataclass(frozen=True)
class StoredAnswer:
    """A dedupe record: the first answer to a request and what the request was."""

    answer: dict
    request_hash: str
    ref: str
    kind: str


def stored_answer(item: DedupeModel) -> StoredAnswer:
    return StoredAnswer(dict(item.answer or {}), item.request_hash or "", item.ref or "", item.kind)


@dataclass(frozen=True)
class EntrySpec:
    """One ledger line of a card account (amount signed: + into the account)."""

    entry_id: str
    wallet: Wallet
    amount_fen: int
    kind: str
    source: str  # what booked it: "<terminal>#<txn>", a recharge id, "<month>" ...


@dataclass(frozen=True)
class Movement:
    """Everything one money transaction of a card writes, besides the card's own update."""

    merchant_id: str
    account_id: str
    at: float
    entries: tuple[EntrySpec, ...]
    dedupe_key: str | None = None  # None: the ledger entries' deterministic ids are the dedupe
    dedupe_kind: str = ""
    answer: dict = field(default_factory=dict)
    request_hash: str = ""
    nonce: NonceClaim | None = None  # the edge request's nonce, claimed by this transaction


# Outcomes of a transaction attempt.
@dataclass(frozen=True)
class Booked:
    pass


@dataclass(frozen=True)
class Repeat:
    stored: StoredAnswer


@dataclass(frozen=True)
class Stale:
    card: CardState | None  # the card as it is now (None: gone), to decide again


@dataclass(frozen=True)
class EntryExists:
    """A deterministic ledger entry was booked before (a grant or credit without a dedupe record)."""


@dataclass(frozen=True)
class NonceUsed:
    """The edge request's nonce was used before: a replayed request, nothing was written."""


@dataclass(frozen=True)
class OtherFailed:
    tables: tuple[str, ...]  # an item added by `also` was not in the expected state


Outcome = Booked | Repeat | Stale | EntryExists | NonceUsed | OtherFailed


class CardStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _client(self) -> Any:
        return transaction_connection(self._settings).client

    def _transaction(self) -> TransactWrite:
        return TransactWrite(connection=transaction_connection(self._settings))

    # --- reads -----------------------------------------------------------------------------

    def get(self, merchant_id: str, card_no: str) -> CardState | None:
        try:
            return to_state(CardModel.get(card_key(merchant_id, card_no), consistent_read=True))
        except DoesNotExist:
            return None

    def read_for_payment(self, merchant_id: str, card_no: str, dedupe_key: str
                         ) -> tuple[CardState | None, StoredAnswer | None]:
        """The card and the request's dedupe record in one BatchGetItem (one round trip)."""
        cards, dedupe = CardModel.Meta.table_name, DedupeModel.Meta.table_name
        request = {
            cards: {"Keys": [{"card_key": {"S": card_key(merchant_id, card_no)}}], "ConsistentRead": True},
            dedupe: {"Keys": [{"dedupe_key": {"S": dedupe_key}}], "ConsistentRead": True},
        }
        found: dict[str, list] = {cards: [], dedupe: []}
        for _ in range(5):  # unprocessed keys only under throttling; each round retries what is left
            answer = self._client().batch_get_item(RequestItems=request)
            for table, items in answer.get("Responses", {}).items():
                found[table].extend(items)
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise RuntimeError("DynamoDB left keys unprocessed")
        card = state_from_raw(found[cards][0]) if found[cards] else None
        stored = stored_answer(DedupeModel.from_raw_data(found[dedupe][0])) if found[dedupe] else None
        return card, stored

    def read_many_for_payment(self, wanted: list[tuple[str, str, str]]
                              ) -> dict[tuple[str, str, str], tuple[CardState | None, StoredAnswer | None]]:
        """`read_for_payment` for many (merchant_id, card_no, dedupe_key) at once (a batch of card
        payments): BatchGetItem, 100 keys per call (DynamoDB's limit), a card asked twice read once."""
        cards, dedupe = CardModel.Meta.table_name, DedupeModel.Meta.table_name
        card_keys = sorted({card_key(m, c) for m, c, _ in wanted})
        dedupe_keys = sorted({d for _, _, d in wanted})
        keys = [(cards, "card_key", k) for k in card_keys] + [(dedupe, "dedupe_key", k) for k in dedupe_keys]
        found_cards: dict[str, CardState] = {}
        found_answers: dict[str, StoredAnswer] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {}
            for table, name, key in keys[start:start + 100]:
                request.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append({name: {"S": key}})
            for _ in range(5):  # unprocessed keys only under throttling; each round retries what is left
                answer = self._client().batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(cards, []):
                    state = state_from_raw(item)
                    found_cards[card_key(state.merchant_id, state.card_no)] = state
                for item in answer.get("Responses", {}).get(dedupe, []):
                    found_answers[item["dedupe_key"]["S"]] = stored_answer(DedupeModel.from_raw_data(item))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RuntimeError("DynamoDB left keys unprocessed")
        return {(m, c, d): (found_cards.get(card_key(m, c)), found_answers.get(d)) for m, c, d in wanted}

    def stored_answer(self, dedupe_key: str) -> StoredAnswer | None:
        try:
            return stored_answer(DedupeModel.get(dedupe_key, consistent_read=True))
        except DoesNotExist:
            return None

    def live_card_of_account(self, account_id: str) -> CardState | None:
        """The card now holding an account (active or lost), None when the account is closed."""
        for key in CardModel.by_account.query(account_id):
            try:
                item = CardModel.get(key.card_key, consistent_read=True)
            except DoesNotExist:
                continue
            if item.status in (CardStatus.ACTIVE.value, CardStatus.LOST.value):
                return to_state(item)
        return None

    def card_keys_of_merchant(self, merchant_id: str) -> Iterator[str]:
        for key in CardModel.by_merchant.query(merchant_id):
            yield key.card_key

    def get_by_key(self, key: str) -> CardState | None:
        try:
            return to_state(CardModel.get(key, consistent_read=True))
        except DoesNotExist:
            return None

    def account_entries(self, account_id: str) -> Iterator[LedgerEntryModel]:
        """Every ledger entry of a card account (statements): one Query, paged by DynamoDB."""
        attributes = ["entry_id", "merchant_id", "amount_fen", "kind", "wallet", "channel_trade_no",
                      "business_date", "created_at"]
        return LedgerEntryModel.query(ledger_account(account_id), consistent_read=True, attributes_to_get=attributes)

    def entries_of(self, account_id: str, prefix: str) -> list[LedgerEntryModel]:
        return list(LedgerEntryModel.query(ledger_account(account_id), LedgerEntryModel.entry_id.startswith(prefix),
                                           consistent_read=True))

    # --- money transactions ----------------------------------------------------------------

    def book_payment(self, card: CardState, charge: Charge, movement: Movement, also: Any = None) -> Outcome:
        """Debit the wallets and move the counters, if the card is still exactly as `card`."""
        actions, condition = _payment_update(card, charge)
        actions.append(CardModel.updated_at.set(movement.at))
        return self._commit(card, actions, condition, movement, also, counters_tag(charge))

    def credit(self, card: CardState, deltas: dict[Wallet, int], movement: Movement,
               extra_actions: list | None = None, extra_condition: Condition | None = None,
               also: Any = None) -> Outcome:
        """Add (or with negative deltas take) money to a live card's wallets, conditioned on the card
        still holding the account and on the wallets being as read (so the new balance is exact).
        `also(tx)` adds other items of the same business fact to the transaction (a recharge order)."""
        condition = same_money(card)
        actions: list = [CardModel.updated_at.set(movement.at)]
        for wallet, delta in deltas.items():
            if delta:
                actions.append(_wallet_attr(wallet).add(delta))
        if extra_condition is not None:
            condition = condition & extra_condition
        return self._commit(card, actions + list(extra_actions or []), condition, movement, also)

    def _commit(self, card: CardState, actions: list, condition: Condition, movement: Movement,
                also: Any = None, counters: str | None = None) -> Outcome:
        key = card_key(card.merchant_id, card.card_no)
        tx = self._transaction()
        try:
            with tx:
                tx.update(CardModel(key), actions=actions, condition=condition, return_values="ALL_OLD")
                for spec in movement.entries:
                    tx.save(entry_model(movement, spec, counters),
                            condition=LedgerEntryModel.entry_id.does_not_exist())
                add_card_totals(tx, movement)  # the merchant-day's settlement totals (reported beside)
                if movement.dedupe_key:
                    record = DedupeModel(movement.dedupe_key, kind=movement.dedupe_kind, ref=movement.account_id,
                                         answer=movement.answer, request_hash=movement.request_hash,
                                         created_at=movement.at)
                    tx.save(record, condition=DedupeModel.dedupe_key.does_not_exist(), return_values="ALL_OLD")
                if movement.nonce is not None:
                    tx.save(movement.nonce.record(), condition=movement.nonce.condition())
                if also is not None:
                    also(tx)
        except TransactWriteError as error:
            if movement.nonce is not None and movement.nonce.key in _failed_dedupe_keys(error, tx):
                return NonceUsed()  # first: a replay also finds its txn's dedupe record
            return _outcome(error, tx)
        return Booked()


def to_model(state: CardState, now: float) -> CardModel:
    return CardModel(
        card_key(state.merchant_id, state.card_no), merchant_id=state.merchant_id, card_no=state.card_no,
        account_id=state.account_id, holder_id=state.holder_id, class_code=state.class_code,
        status=state.status.value, cash_fen=state.cash_fen, subsidy_fen=state.subsidy_fen,
        day=state.day, day_fen=state.day_fen, day_count=state.day_count,  # limits follow a replaced card
        meal=state.meal, meal_fen=state.meal_fen, meal_count=state.meal_count,
        subsidy_month=state.subsidy_month, created_at=now, updated_at=now,
    )


def _wallet_attr(wallet: Wallet):  # type: ignore[no-untyped-def]
    return CardModel.cash_fen if wallet is Wallet.CASH else CardModel.subsidy_fen


def same_money(card: CardState) -> Condition:
    """The card still holds this account in this status with exactly these wallets."""
    return ((CardModel.status == card.status.value) & (CardModel.account_id == card.account_id)
            & (CardModel.cash_fen == card.cash_fen) & (CardModel.subsidy_fen == card.subsidy_fen))


def _payment_update(card: CardState, charge: Charge) -> tuple[list, Condition]:
    condition = same_money(card) & (CardModel.class_code == card.class_code)
    actions: list = []
    if charge.subsidy_fen:
        actions.append(CardModel.subsidy_fen.add(-charge.subsidy_fen))
    if charge.cash_fen:
        actions.append(CardModel.cash_fen.add(-charge.cash_fen))
    if charge.counted:
        actions_, condition_ = _counter_update(
            CardModel.day, CardModel.day_fen, CardModel.day_count, charge.day, charge.day_fresh,
            charge.charged_fen, charge.day_fen_cap, charge.day_count_cap)
        actions += actions_
        condition = condition & condition_
        if charge.meal:
            actions_, condition_ = _counter_update(
                CardModel.meal, CardModel.meal_fen, CardModel.meal_count, charge.meal, charge.meal_fresh,
                charge.charged_fen, charge.meal_fen_cap, charge.meal_count_cap)
            actions += actions_
            condition = condition & condition_
    return actions, condition


def _counter_update(period, fen, count, key: str, fresh: bool, charged: int,  # type: ignore[no-untyped-def]
                    fen_cap: int | None, count_cap: int | None) -> tuple[list, Condition]:
    """Counters of a period (day or meal): restart them in a new period, else add within the caps."""
    if fresh:
        return [period.set(key), fen.set(charged), count.set(1)], period.does_not_exist() | (period != key)
    condition = period == key
    if fen_cap is not None:
        condition = condition & (fen <= fen_cap)
    if count_cap is not None:
        condition = condition & (count <= count_cap)
    return [fen.add(charged), count.add(1)], condition


def entry_model(movement: Movement, spec: EntrySpec, counters: str | None = None) -> LedgerEntryModel:
    return ledger_entry(
        ledger_account(movement.account_id), spec.entry_id, movement.merchant_id, movement.at,
        amount_fen=spec.amount_fen, kind=spec.kind, wallet=spec.wallet.value, channel="card",
        channel_trade_no=spec.source, created_at=movement.at, card_counters=counters,
    )


def counters_tag(charge: Charge) -> str | None:
    """What a payment's ledger entries record of the counters it moved: "<day>|<meal key or ''>"."""
    return f"{charge.day}|{charge.meal or ''}" if charge.counted else None


def counted_periods(entry: LedgerEntryModel) -> tuple[str | None, str | None]:
    """(day, meal key) whose counters a payment entry moved; (None, None) when it counted nowhere."""
    if not entry.card_counters:
        return None, None
    day, _, meal = entry.card_counters.partition("|")
    return day or None, meal or None


def rollback_update(card: CardState, rollback: Rollback) -> tuple[list, Condition | None]:
    """A reversal's counter actions, conditioned on the counters being exactly as `card` read them
    (so a payment counted meanwhile makes the write stale instead of losing its count)."""
    actions: list = []
    condition: Condition | None = None
    for touched, period, key, fen, fen_read, fen_back, count, count_read, count_back in (
            (rollback.day_touched, CardModel.day, card.day, CardModel.day_fen, card.day_fen, rollback.day_fen,
             CardModel.day_count, card.day_count, rollback.day_count),
            (rollback.meal_touched, CardModel.meal, card.meal, CardModel.meal_fen, card.meal_fen, rollback.meal_fen,
             CardModel.meal_count, card.meal_count, rollback.meal_count)):
        if not touched:
            continue
        exact = (period == key) & (fen == fen_read) & (count == count_read)
        condition = exact if condition is None else condition & exact
        actions += [fen.add(-fen_back), count.add(-count_back)]
    return actions, condition


def _outcome(error: TransactWriteError, tx: TransactWrite) -> Outcome:
    """What a cancelled transaction means, from the failed conditions and the items DynamoDB returned."""
    failed = failed_conditions(error, tx)
    if not failed:
        raise error  # throttling, validation: not a business outcome
    dedupe = failed.get(DedupeModel.Meta.table_name)
    if dedupe is not None and dedupe.raw_item:
        return Repeat(stored_answer(DedupeModel.from_raw_data(dedupe.raw_item)))
    card = failed.get(CardModel.Meta.table_name)
    if card is not None:
        return Stale(to_state(CardModel.from_raw_data(card.raw_item)) if card.raw_item else None)
    if LedgerEntryModel.Meta.table_name in failed:
        return EntryExists()
    return OtherFailed(tuple(failed))


def failed_conditions(error: TransactWriteError, tx: TransactWrite) -> dict[str, Any]:
    """Table name -> cancellation reason of each item whose condition failed (when two items of one
    table failed, the later one)."""
    return {op["TableName"]: r for op, r in _failed_items(error, tx)}


def _failed_items(error: TransactWriteError, tx: TransactWrite) -> list[tuple[dict, Any]]:
    """(request item, cancellation reason) of each item whose condition failed. Reasons come one per
    item in request order, and PynamoDB sends condition checks, deletes, puts, then updates."""
    reasons = list(getattr(error, "cancellation_reasons", None) or [])
    ops = tx._condition_check_items + tx._delete_items + tx._put_items + tx._update_items
    return [(ops[i], r) for i, r in enumerate(reasons)
            if r is not None and r.code == "ConditionalCheckFailed" and i < len(ops)]


def _failed_dedupe_keys(error: TransactWriteError, tx: TransactWrite) -> set[str]:
    """Keys of the dedupe records whose condition failed (a payment may put two: its txn's, its nonce's)."""
    table, name = DedupeModel.Meta.table_name, DedupeModel.dedupe_key.attr_name
    return {op["Item"][name]["S"] for op, _ in _failed_items(error, tx) if op["TableName"] == table and "Item" in op}
