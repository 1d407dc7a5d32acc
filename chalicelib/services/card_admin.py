"""Operator use cases at the canteen counter: holders, issuing cards, lost / found / cancel / replace,
recharge in cash and reversal (纠错) of a wrong payment.

Money operations are idempotent by an id the operator's console chooses (`request_id`) or by the
payment they correct; each is one transaction with its ledger entries and permanent dedupe record.
"""
from __future__ import annotations

import secrets
from typing import Callable

from chalicelib.domain.canteen_decision import rollback
from chalicelib.domain.canteen_wallets import within_reversal_window
from chalicelib.domain.cards import CardState, CardStatus, Wallet
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import Conflict, InvalidAmount, InvalidRequest, NotFound
from chalicelib.domain.money import MAX_ORDER_FEN
from chalicelib.services.card_offline import BOOKED_EXCEPTION_KIND, KEPT_KIND, booked_exception_key
from chalicelib.services.cards import repeat_answer, settle, txn_key
from chalicelib.store.canteen_rules import CanteenRulesStore
from chalicelib.store.card_holders import Holder, HolderStore
from chalicelib.store.card_lifecycle import CardLifecycleStore, StatusChange
from chalicelib.store.cards import (Booked, CardStore, EntrySpec, Movement, Outcome, Repeat, counted_periods,
                                    rollback_update)

ATTEMPTS = 8


def card_view(card: CardState) -> dict:
    return {"card_no": card.card_no, "status": card.status.value, "holder_id": card.holder_id,
            "class_code": card.class_code, "cash_fen": card.cash_fen, "subsidy_fen": card.subsidy_fen,
            "balance_fen": card.balance_fen}


def check_amount(amount_fen: object) -> int:
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or not 0 < amount_fen <= MAX_ORDER_FEN:
        raise InvalidAmount("amount_fen must be a positive integer of fen")
    return amount_fen


def credit_until_booked(card: CardState | None, attempt: Callable[[CardState], Outcome], digest: str) -> dict | None:
    """Run a credit on the live card until it lands: None when booked, else the first answer of a
    repeat. A Stale outcome (a payment landed meanwhile) is retried on the card as it now is."""
    def live_only(live: CardState | None) -> object:
        if live is None or live.status not in (CardStatus.ACTIVE, CardStatus.LOST):
            raise Conflict("the card holds no account (cancelled or replaced)")
        return attempt(live)

    outcome, _ = settle(card, live_only, ATTEMPTS)
    if isinstance(outcome, Booked):
        return None
    if isinstance(outcome, Repeat):
        return repeat_answer(outcome.stored, digest)
    raise Conflict("the card is busy; try again" if outcome is None else f"could not book: {outcome}")


class CardAdminService:
    def __init__(self, cards: CardStore, holders: HolderStore, lifecycle: CardLifecycleStore,
                 rules: CanteenRulesStore, clock: Clock) -> None:
        self._cards = cards
        self._holders = holders
        self._lifecycle = lifecycle
        self._rules = rules
        self._clock = clock

    # --- holders ---------------------------------------------------------------------------

    def create_holder(self, merchant_id: str, name: str, number: str = "", class_code: str = "default",
                      phone: str = "") -> Holder:
        if not name.strip():
            raise InvalidRequest("a holder needs a name")
        token = secrets.token_hex(6).upper()
        holder = Holder(f"H{token}", merchant_id, name.strip(), number, class_code or "default", phone, None,
                        f"A{token}", None, "active")
        self._holders.create(holder, self._clock.now())
        return holder

    def holder(self, merchant_id: str, holder_id: str) -> Holder:
        holder = self._holders.get(holder_id)
        if holder is None or holder.merchant_id != merchant_id or holder.status != "active":
            raise NotFound("no such holder")
        return holder

    def update_holder(self, merchant_id: str, holder_id: str, fields: dict) -> Holder:
        holder = self.holder(merchant_id, holder_id)
        if any(not isinstance(v, str) for v in fields.values()):
            raise InvalidRequest("holder fields are strings")
        self._holders.update_fields(holder_id, fields)
        if "class_code" in fields and fields["class_code"] != holder.class_code:
            card = self._cards.get(merchant_id, holder.card_no) if holder.card_no else None
            self._lifecycle.change_class(card, holder_id, fields["class_code"], self._clock.now())
        return self.holder(merchant_id, holder_id)

    def delete_holder(self, merchant_id: str, holder_id: str) -> None:
        self.holder(merchant_id, holder_id)
        self._holders.delete(holder_id)

    # --- cards -----------------------------------------------------------------------------

    def issue_card(self, merchant_id: str, holder_id: str, card_no: str) -> dict:
        holder = self.holder(merchant_id, holder_id)
        if not card_no.isalnum() or len(card_no) > 32:
            raise InvalidRequest("a card number is 1..32 letters or digits")
        if holder.card_no:
            raise Conflict("this holder has a card; replace it instead")
        card = CardState(merchant_id, card_no, holder.account_id, holder_id, holder.class_code,
                         CardStatus.ACTIVE, 0, 0)
        self._lifecycle.issue(holder, card, self._clock.now())
        return card_view(card)

    def card(self, merchant_id: str, card_no: str) -> CardState:
        card = self._cards.get(merchant_id, card_no)
        if card is None:
            raise NotFound("no such card")
        return card

    def report_lost(self, merchant_id: str, card_no: str) -> dict:
        return self._set_status(merchant_id, card_no, CardStatus.ACTIVE, CardStatus.LOST, "add")

    def report_found(self, merchant_id: str, card_no: str) -> dict:
        return self._set_status(merchant_id, card_no, CardStatus.LOST, CardStatus.ACTIVE, "remove")

    def _set_status(self, merchant_id: str, card_no: str, from_: CardStatus, to: CardStatus, action: str) -> dict:
        card = self.card(merchant_id, card_no)
        if card.status is to:
            return card_view(card)  # a repeated request: already done
        if card.status is not from_:
            raise Conflict(f"the card is {card.status.value}")
        self._lifecycle.change_status(StatusChange(card, to, action), self._clock.now())
        return card_view(self.card(merchant_id, card_no))

    def cancel(self, merchant_id: str, card_no: str) -> dict:
        """Returns the cash to pay out to the holder (the subsidy lapses)."""
        card = self.card(merchant_id, card_no)
        if card.status is CardStatus.CANCELLED:
            return card_view(card) | {"refund_cash_fen": 0}
        if card.status not in (CardStatus.ACTIVE, CardStatus.LOST):
            raise Conflict(f"the card is {card.status.value}")
        self._lifecycle.cancel(card, self._clock.now())
        return card_view(self.card(merchant_id, card_no)) | {"refund_cash_fen": card.cash_fen}

    def replace(self, merchant_id: str, card_no: str, new_card_no: str) -> dict:
        card = self.card(merchant_id, card_no)
        if card.status is CardStatus.REPLACED:
            live = self._cards.live_card_of_account(card.account_id)
            if live is not None and live.card_no == new_card_no:
                return card_view(live)  # a repeated request
        if card.status not in (CardStatus.ACTIVE, CardStatus.LOST):
            raise Conflict(f"the card is {card.status.value}")
        if not new_card_no.isalnum() or len(new_card_no) > 32 or new_card_no == card_no:
            raise InvalidRequest("a new card number is 1..32 letters or digits")
        moved = self._lifecycle.replace(card, new_card_no, self._clock.now())
        return card_view(moved)

    # --- money -----------------------------------------------------------------------------

    def recharge(self, merchant_id: str, card_no: str, amount_fen: object, request_id: str) -> dict:
        """Cash paid in at the counter. `request_id` (the console's) makes a retry return the first answer."""
        amount = check_amount(amount_fen)
        if not request_id or len(request_id) > 64:
            raise InvalidRequest("request_id (1..64 chars) identifies this recharge")
        card = self.card(merchant_id, card_no)
        key = f"card_op#{merchant_id}#recharge#{request_id}"
        digest = f"recharge|{card_no}|{amount}"
        stored = self._cards.stored_answer(key)
        if stored is not None:
            return repeat_answer(stored, digest)
        answers: list[dict] = []

        def attempt(live: CardState) -> Outcome:
            answer = card_view(live) | {"cash_fen": live.cash_fen + amount, "balance_fen": live.balance_fen + amount,
                                        "amount_fen": amount, "request_id": request_id}
            answers.append(answer)
            now = self._clock.now()
            entry = EntrySpec(f"recharge#{request_id}", Wallet.CASH, amount, "RECHARGE", f"counter#{request_id}")
            return self._cards.credit(live, {Wallet.CASH: amount},
                                      Movement(merchant_id, live.account_id, now, (entry,), key, "card_recharge",
                                               answer, digest))

        repeat = credit_until_booked(card, attempt, digest)
        return repeat if repeat is not None else answers[-1]

    def reverse(self, merchant_id: str, terminal_id: str, txn: int) -> dict:
        """纠错: a wrong payment is corrected by a new entry crediting back what it took, per wallet,
        within the merchant's reversal window. Once per payment (the reversal's dedupe record and
        entries are conditional puts in its transaction). The day/meal limit counters the payment
        moved are given back in the same transaction, where the card still counts that period."""
        account_id, booked_at = self._booked_payment(merchant_id, terminal_id, txn)
        entries = [e for e in self._cards.entries_of(account_id, f"pay#{terminal_id}#{txn}#")
                   if e.merchant_id == merchant_id]
        if not entries:
            raise NotFound("no card payment with this terminal and txn")
        now = self._clock.now()
        window = self._rules.rules(merchant_id).reversal_window_s
        paid_at = booked_at if booked_at is not None else float(entries[0].created_at)
        if not within_reversal_window(paid_at, now, window):
            raise Conflict("the reversal window has passed")
        key = f"reversal#{terminal_id}#{txn}"
        digest = f"reversal|{terminal_id}|{txn}"
        done = self._cards.stored_answer(key)
        if done is not None:
            return repeat_answer(done, digest)
        credits = {Wallet(e.wallet): -int(e.amount_fen) for e in entries}
        amount = sum(credits.values())
        day, meal = counted_periods(entries[0])  # every entry of a payment carries the same tag
        answers: list[dict] = []

        def attempt(live: CardState) -> Outcome:
            answer = card_view(live) | {
                "cash_fen": live.cash_fen + credits.get(Wallet.CASH, 0),
                "subsidy_fen": live.subsidy_fen + credits.get(Wallet.SUBSIDY, 0),
                "balance_fen": live.balance_fen + amount, "reversed_fen": amount,
                "terminal_id": terminal_id, "txn": txn, "paid_on": str(entries[0].business_date),
            }
            answers.append(answer)
            specs = tuple(EntrySpec(f"rev#{terminal_id}#{txn}#{w.value}", w, fen, "REVERSAL", f"{terminal_id}#{txn}")
                          for w, fen in credits.items())
            counters, condition = rollback_update(live, rollback(live, day, meal, amount))
            return self._cards.credit(live, credits, Movement(merchant_id, account_id, self._clock.now(), specs,
                                                              key, "card_reversal", answer, digest),
                                      extra_actions=counters, extra_condition=condition)

        repeat = credit_until_booked(self._cards.live_card_of_account(account_id), attempt, digest)
        return repeat if repeat is not None else answers[-1]

    def _booked_payment(self, merchant_id: str, terminal_id: str, txn: int) -> tuple[str, float | None]:
        """The account a booked card payment of (terminal, txn) took money from, and when the merchant
        booked it if it was a kept offline record booked later (None: its entries' time is when).

        Paid online or uploaded offline and booked: the txn's dedupe record says so. Kept as an
        exception: the txn's record holds the refusal, and the merchant's booking has its own record
        (services/card_offline.py), keyed by merchant so another merchant finds nothing."""
        stored = self._cards.stored_answer(txn_key(terminal_id, txn))
        if stored is not None and stored.kind in ("card_txn", "card_offline") and stored.answer.get("ok"):
            return stored.ref, None
        if stored is not None and stored.kind == KEPT_KIND:
            booked = self._cards.stored_answer(booked_exception_key(merchant_id, terminal_id, txn))
            if booked is not None and booked.kind == BOOKED_EXCEPTION_KIND and booked.answer.get("ok"):
                at = booked.answer.get("booked_at")
                # The window runs from the merchant's booking: the meal may be days older than that.
                return booked.ref, float(at) if isinstance(at, (int, float)) else None
        raise NotFound("no card payment with this terminal and txn")

