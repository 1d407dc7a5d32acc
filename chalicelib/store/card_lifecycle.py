"""Issuing, losing, finding, cancelling and replacing cards: each one transaction with the card's
status, the blacklist change edge agents will fetch, the holder's current card and, when money
moves (cancel pays out and closes the wallets), its ledger entries.

Every card write is conditioned on the card being exactly as read (status, account, wallets), so
a payment landing between the read and the write makes the change fail instead of losing it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.domain.cards import CardState, CardStatus, Wallet
from chalicelib.domain.errors import Conflict
from chalicelib.store.card_blacklist import BlacklistChange, BlacklistStore
from chalicelib.store.card_holders import Holder
from chalicelib.store.card_models import CardBlacklistModel, CardHolderModel, CardModel
from chalicelib.store.cards import (
    EntrySpec,
    Movement,
    card_key,
    entry_model,
    failed_conditions,
    same_money,
    to_model,
)
from chalicelib.store.connection import transaction_connection
from chalicelib.store.models import LedgerEntryModel
from chalicelib.store.settlement_totals import add_card_totals

ATTEMPTS = 5  # only a concurrent blacklist change of the same merchant makes an attempt fail


@dataclass(frozen=True)
class StatusChange:
    card: CardState  # as read
    to: CardStatus
    blacklist: str | None  # "add", "remove" or None (already listed)


class CardLifecycleStore:
    def __init__(self, settings: Settings, blacklist: BlacklistStore) -> None:
        self._settings = settings
        self._blacklist = blacklist

    def issue(self, holder: Holder, card: CardState, now: float) -> None:
        """A new card for a holder without one (a card number is never issued twice)."""
        def build(tx: TransactWrite, _: int) -> None:
            tx.save(to_model(card, now), condition=CardModel.card_key.does_not_exist())
            tx.update(CardHolderModel(holder.holder_id), actions=[CardHolderModel.card_no.set(card.card_no)],
                      condition=(CardHolderModel.status == "active") & CardHolderModel.card_no.does_not_exist())

        self._run(card.merchant_id, build, with_blacklist=False)

    def change_status(self, change: StatusChange, now: float) -> int | None:
        """lost / found: status and blacklist. Returns the blacklist version written, if any."""
        written: list[int] = []

        def build(tx: TransactWrite, version: int) -> None:
            tx.update(CardModel(card_key(change.card.merchant_id, change.card.card_no)),
                      actions=[CardModel.status.set(change.to.value), CardModel.updated_at.set(now)],
                      condition=same_money(change.card))
            if change.blacklist:
                written.append(self._blacklist.add_change(
                    tx, change.card.merchant_id, version, BlacklistChange(change.card.card_no, change.blacklist), now))

        self._run(change.card.merchant_id, build, with_blacklist=bool(change.blacklist))
        return written[-1] if written else None

    def cancel(self, card: CardState, now: float) -> None:
        """注销: the cash is paid out to the holder, the subsidy lapses, the card is blacklisted."""
        movement = Movement(card.merchant_id, card.account_id, now, tuple(
            EntrySpec(f"cancel#{card.card_no}#{wallet.value}", wallet, -amount, kind, card.card_no)
            for wallet, amount, kind in ((Wallet.CASH, card.cash_fen, "CASH_REFUND"),
                                         (Wallet.SUBSIDY, card.subsidy_fen, "SUBSIDY_EXPIRED"))
            if amount))

        def build(tx: TransactWrite, version: int) -> None:
            tx.update(CardModel(card_key(card.merchant_id, card.card_no)), actions=[
                CardModel.status.set(CardStatus.CANCELLED.value), CardModel.cash_fen.set(0),
                CardModel.subsidy_fen.set(0), CardModel.updated_at.set(now)], condition=same_money(card))
            for spec in movement.entries:
                tx.save(entry_model(movement, spec), condition=LedgerEntryModel.entry_id.does_not_exist())
            add_card_totals(tx, movement)  # the merchant-day's settlement totals (reported beside)
            tx.update(CardHolderModel(card.holder_id), actions=[CardHolderModel.card_no.remove()],
                      condition=CardHolderModel.card_no == card.card_no)
            if card.status is CardStatus.ACTIVE:  # a lost card is on the list already
                self._blacklist.add_change(tx, card.merchant_id, version, BlacklistChange(card.card_no, "add"), now)

        self._run(card.merchant_id, build, with_blacklist=card.status is CardStatus.ACTIVE)

    def replace(self, card: CardState, new_card_no: str, now: float) -> CardState:
        """补卡: the account (wallets and today's counters) moves to a new card number; the old one
        is blacklisted. Within one account no money moves, so there is no ledger entry."""
        moved = replace(card, card_no=new_card_no, status=CardStatus.ACTIVE)

        def build(tx: TransactWrite, version: int) -> None:
            tx.update(CardModel(card_key(card.merchant_id, card.card_no)), actions=[
                CardModel.status.set(CardStatus.REPLACED.value), CardModel.cash_fen.set(0),
                CardModel.subsidy_fen.set(0), CardModel.replaced_by.set(new_card_no),
                CardModel.updated_at.set(now)], condition=same_money(card))
            tx.save(to_model(moved, now), condition=CardModel.card_key.does_not_exist())
            tx.update(CardHolderModel(card.holder_id), actions=[CardHolderModel.card_no.set(new_card_no)],
                      condition=CardHolderModel.card_no == card.card_no)
            if card.status is CardStatus.ACTIVE:
                self._blacklist.add_change(tx, card.merchant_id, version, BlacklistChange(card.card_no, "add"), now)

        self._run(card.merchant_id, build, with_blacklist=card.status is CardStatus.ACTIVE)
        return moved

    def change_class(self, card: CardState | None, holder_id: str, class_code: str, now: float) -> None:
        """A holder's class is also on the live card (payments read only the card)."""
        def build(tx: TransactWrite, _: int) -> None:
            tx.update(CardHolderModel(holder_id), actions=[CardHolderModel.class_code.set(class_code)],
                      condition=CardHolderModel.status == "active")
            if card is not None:
                tx.update(CardModel(card_key(card.merchant_id, card.card_no)), actions=[
                    CardModel.class_code.set(class_code), CardModel.updated_at.set(now)],
                    condition=CardModel.account_id == card.account_id)

        self._run(card.merchant_id if card else "", build, with_blacklist=False)

    def _run(self, merchant_id: str, build: Callable[[TransactWrite, int], None], with_blacklist: bool) -> None:
        for _ in range(ATTEMPTS):
            version = self._blacklist.latest(merchant_id) if with_blacklist else 0
            tx = TransactWrite(connection=transaction_connection(self._settings))
            try:
                with tx:
                    build(tx, version)
                return
            except TransactWriteError as error:
                if not _only_blacklist_head_failed(error, tx):
                    raise Conflict("the card or holder changed meanwhile; read it again") from error
        raise Conflict("the blacklist is busy; try again")


def _only_blacklist_head_failed(error: TransactWriteError, tx: TransactWrite) -> bool:
    return set(failed_conditions(error, tx)) == {CardBlacklistModel.Meta.table_name}
