"""Void of a card payment whose online attempt may have landed while the terminal was told "refused".

The edge agent refuses a card payment offline when the cloud did not answer in time, and the
attempt may still have reached the cloud. Once the cloud is reachable again, it asks here to void
that (terminal, txn), and gets one of two answers, the same one for every repeat:

- `reversed`: a payment was booked; it is given back by a correcting reversal (new REVERSAL ledger
  entries per wallet, with the limit counters it moved, like the operator's 纠错 in card_admin.py),
  in one transaction with its permanent dedupe record. It shares the operator reversal's record
  (`reversal#<terminal>#<txn>`), ledger entry ids and request hash, so a payment is reversed once,
  whichever comes first, and each gets the first one's answer. No reversal window applies: the
  terminal told the holder that this payment failed, so the money goes back whenever we learn of it.
- `never_booked`: nothing was booked; the txn's own dedupe record is claimed as voided (one
  conditional put, store/txn_voids.py), so the original request, arriving however late, is refused
  and books nothing (services/cards.py answers it from that record with ERR012, what the terminal
  was told).

A (terminal, txn) that holds anything else (a QR order, a kept offline record) is a Conflict and
nothing changes. A card that no longer holds the account (cancelled) is a Conflict too: a person
settles it at the counter.
"""
from __future__ import annotations

import logging

from chalicelib.domain.canteen_decision import rollback
from chalicelib.domain.cards import CardState, CardStatus, Wallet, refusal_answer
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ChannelUnavailable, Conflict
from chalicelib.services.card_admin import card_view
from chalicelib.services.cards import settle, txn_key
from chalicelib.store.cards import (Booked, CardStore, EntrySpec, Movement, Repeat, StoredAnswer, counted_periods,
                                    rollback_update)
from chalicelib.store.directory import TerminalInfo
from chalicelib.store.txn_voids import VOIDED_KIND, CardVoidStore

log = logging.getLogger(__name__)

REVERSED, NEVER_BOOKED = "reversed", "never_booked"
PAYMENT_KINDS = ("card_txn", "card_offline")  # dedupe kinds of a booked card payment
VOID_REVERSAL_KIND = "card_void_reversal"
VOIDED_HASH = "void"  # a voided txn's record matches no payment request: it is answered by its kind
ATTEMPTS = 8


def voided_answer() -> dict:
    """What a late original request of a voided txn gets: the refusal the terminal saw (network fault)."""
    return refusal_answer("ERR012", None) | {"voided": True}


def reversal_key(terminal_id: str, txn: int) -> str:
    return f"reversal#{terminal_id}#{txn}"


def reversal_hash(terminal_id: str, txn: int) -> str:
    return f"reversal|{terminal_id}|{txn}"  # the operator reversal's, so either one repeats the other


class CardVoidService:
    def __init__(self, cards: CardStore, voids: CardVoidStore, clock: Clock) -> None:
        self._cards = cards
        self._voids = voids
        self._clock = clock

    def void(self, terminal: TerminalInfo, txn: int) -> dict:
        key = txn_key(terminal.terminal_id, txn)
        for _ in range(2):  # a payment that lands between the read and the claim: read once more
            stored = self._cards.stored_answer(key)
            if stored is None:
                if self._voids.claim_voided(key, voided_answer(), VOIDED_HASH, self._clock.now()):
                    return _never_booked(terminal, txn)
                continue
            return self._settled(terminal, txn, stored)
        raise ChannelUnavailable("the txn changed meanwhile; try again")  # records are permanent: not reached

    def _settled(self, terminal: TerminalInfo, txn: int, stored: StoredAnswer) -> dict:
        if stored.kind == VOIDED_KIND:
            return _never_booked(terminal, txn)
        if stored.kind in PAYMENT_KINDS and stored.answer.get("ok"):
            return self._reverse(terminal, txn, stored.ref)
        raise Conflict(f"txn {txn} of terminal {terminal.terminal_id} is not a card payment ({stored.kind})")

    def _reverse(self, terminal: TerminalInfo, txn: int, account_id: str) -> dict:
        key, digest = reversal_key(terminal.terminal_id, txn), reversal_hash(terminal.terminal_id, txn)
        done = self._cards.stored_answer(key)
        if done is not None:
            return _reversed(terminal, txn, done.answer)
        source = f"{terminal.terminal_id}#{txn}"
        entries = [e for e in self._cards.entries_of(account_id, f"pay#{source}#")
                   if e.merchant_id == terminal.merchant_id]
        if not entries:
            raise Conflict(f"no ledger entries for the card payment {source}")
        credits = {Wallet(e.wallet): -int(e.amount_fen) for e in entries}
        amount = sum(credits.values())
        day, meal = counted_periods(entries[0])  # every entry of one payment carries the same tag
        answers: list[dict] = []

        def attempt(live: CardState | None) -> object:
            if live is None or live.status not in (CardStatus.ACTIVE, CardStatus.LOST):
                raise Conflict("the card holds no account (cancelled): settle the void at the counter")
            answer = card_view(live) | {
                "cash_fen": live.cash_fen + credits.get(Wallet.CASH, 0),
                "subsidy_fen": live.subsidy_fen + credits.get(Wallet.SUBSIDY, 0),
                "balance_fen": live.balance_fen + amount, "reversed_fen": amount,
                "terminal_id": terminal.terminal_id, "txn": txn, "paid_on": str(entries[0].business_date),
                "voided": True,
            }
            answers.append(answer)
            specs = tuple(EntrySpec(f"rev#{source}#{w.value}", w, fen, "REVERSAL", source) for w, fen in credits.items())
            counters, condition = rollback_update(live, rollback(live, day, meal, amount))
            movement = Movement(terminal.merchant_id, account_id, self._clock.now(), specs, key, VOID_REVERSAL_KIND,
                                answer, digest)
            return self._cards.credit(live, credits, movement, extra_actions=counters, extra_condition=condition)

        outcome, _ = settle(self._cards.live_card_of_account(account_id), attempt, ATTEMPTS)
        if isinstance(outcome, Booked):
            return _reversed(terminal, txn, answers[-1])
        if isinstance(outcome, Repeat):  # an operator's reversal or another void landed first
            return _reversed(terminal, txn, outcome.stored.answer)
        if outcome is None:
            log.warning("void %s: card busy after %d attempts", source, ATTEMPTS)
            raise ChannelUnavailable("the card is busy; try again")
        raise RuntimeError(f"void {source}: unexpected outcome {outcome}")


def _never_booked(terminal: TerminalInfo, txn: int) -> dict:
    return {"terminal_id": terminal.terminal_id, "txn": txn, "outcome": NEVER_BOOKED}


def _reversed(terminal: TerminalInfo, txn: int, answer: dict) -> dict:
    return {**answer, "terminal_id": terminal.terminal_id, "txn": txn, "outcome": REVERSED}
