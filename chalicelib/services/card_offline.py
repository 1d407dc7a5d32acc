"""Offline card records uploaded by edge agents (OFFLINE_UPLOAD), applied idempotently.

Each record is booked once per (terminal, txn), whatever path saw it first: a payment that the
cloud booked online while the edge timed out and decided offline is found by its dedupe record
and accepted without a second booking. A record that now breaks a rule (a lost card, an
overdraft) is booked anyway when the merchant's policy says "book", else kept as an exception for
the merchant to resolve: either way it is never dropped, and the agent may forget it.

A booked record moves the card's day/meal limit counters like an online payment, for the day and
meal of its own time (Asia/Shanghai); the limits never refuse it (the meal was served already).
"""
from __future__ import annotations

from chalicelib.domain.canteen_decision import Refused, decide_offline
from chalicelib.domain.canteen_rules import CanteenRules
from chalicelib.domain.cards import CardState, CardStatus, paid_answer, refusal_answer
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ChannelUnavailable, Conflict, InvalidRequest, NotFound
from chalicelib.services.cards import card_request_hash, payment_entries, settle, txn_key
from chalicelib.store.canteen_rules import CanteenRulesStore
from chalicelib.store.card_exceptions import CardExceptionStore, OfflineRecord
from chalicelib.store.cards import Booked, CardStore, Movement, Repeat, StoredAnswer
from chalicelib.store.directory import TerminalInfo

MAX_RECORDS = 50  # protocol.md OFFLINE_UPLOAD
ATTEMPTS = 8
TS_PAST_S = 30 * 86_400  # a record's own time dates its ledger entry, within these bounds
TS_FUTURE_S = 300


KEPT_KIND = "card_offline_exception"  # the txn's dedupe record of a kept record (store/card_exceptions.py)
BOOKED_EXCEPTION_KIND = "card_exception_booked"  # the dedupe record of the merchant's booking of one


def booked_exception_key(merchant_id: str, terminal_id: str, txn: int) -> str:
    """The dedupe record of a kept record booked by the merchant (the txn's own record keeps the refusal)."""
    return f"exception#{merchant_id}#{terminal_id}#{txn}"


def booking_time(ts: int, now: float) -> float:
    """When the meal happened (the terminal's clock), unless that clock is clearly wrong."""
    return float(ts) if now - TS_PAST_S <= ts <= now + TS_FUTURE_S else now


class OfflineService:
    def __init__(self, cards: CardStore, exceptions: CardExceptionStore, rules: CanteenRulesStore,
                 clock: Clock) -> None:
        self._cards = cards
        self._exceptions = exceptions
        self._rules = rules
        self._clock = clock

    def upload(self, terminal: TerminalInfo, records: list[OfflineRecord]) -> dict:
        if len(records) > MAX_RECORDS:
            raise InvalidRequest(f"at most {MAX_RECORDS} records per upload")
        rules = self._rules.rules(terminal.merchant_id)
        accepted: list[int] = []
        rejected: list[dict] = []
        for record in records:
            code = self._apply(terminal.merchant_id, rules, record, book_anyway=rules.offline_policy == "book")
            if code == "OK":
                accepted.append(record.txn)
            else:
                rejected.append({"txn": record.txn, "code": code})
        return {"accepted": accepted, "rejected": rejected}

    def book_exception(self, merchant_id: str, terminal_id: str, txn: int) -> dict:
        """The merchant books a kept record after all (overdraft and lost card allowed)."""
        exception = self._exceptions.get(merchant_id, terminal_id, txn)
        if exception is None:
            raise NotFound("no such exception")
        if exception.status != "open":
            raise Conflict(f"the exception is {exception.status}")
        record = exception.record
        card = self._cards.get(merchant_id, record.card_no)
        if card is not None and card.status is CardStatus.REPLACED:
            card = self._cards.live_card_of_account(card.account_id)  # the account moved to a new card
        if card is None:
            raise Conflict("the card holds no account: dismiss the exception")
        key = booked_exception_key(merchant_id, terminal_id, txn)
        rules = self._rules.rules(merchant_id)
        answers: list[dict] = []

        def attempt(card: CardState | None) -> object:
            now = self._clock.now()
            at = booking_time(record.ts, now)
            decision = decide_offline(rules, card, record.amount_fen, at, True) if card else Refused("ERR001")
            if isinstance(decision, Refused):
                raise Conflict(f"cannot book: {decision.code}")
            # booked_at: a reversal's window runs from this booking, not from the (older) meal.
            answers.append(paid_answer(decision.charged_fen, card.balance_fen - decision.charged_fen)
                           | {"booked_at": now})
            movement = Movement(merchant_id, card.account_id, at,
                                payment_entries(terminal_id, txn, decision, "CARD_PAYMENT_OFFLINE"), key,
                                BOOKED_EXCEPTION_KIND, answers[-1], "")
            return self._cards.book_payment(card, decision, movement, also=self._exceptions.close_action(
                merchant_id, terminal_id, txn, "booked"))

        outcome, _ = settle(card, attempt, ATTEMPTS)
        if isinstance(outcome, Booked):
            return answers[-1]
        if isinstance(outcome, Repeat):
            return outcome.stored.answer
        raise Conflict("the card is busy; try again" if outcome is None else "the exception changed meanwhile")

    # --- one record ------------------------------------------------------------------------

    def _apply(self, merchant_id: str, rules: CanteenRules, record: OfflineRecord, book_anyway: bool) -> str:
        key, digest = txn_key(record.terminal_id, record.txn), card_request_hash(record.card_no, record.amount_fen)
        card, stored = self._cards.read_for_payment(merchant_id, record.card_no, key)
        if stored is not None:
            return self._known(merchant_id, record, stored, digest)
        answers: list[dict] = []

        def attempt(card: CardState | None) -> object:
            # The record's own time decides its ledger day and the day/meal counters it moves.
            at = booking_time(record.ts, self._clock.now())
            decision = decide_offline(rules, card, record.amount_fen, at, book_anyway) if card else Refused("ERR001")
            if isinstance(decision, Refused):
                return decision
            answers.append(paid_answer(decision.charged_fen, card.balance_fen - decision.charged_fen) | {"offline": True})
            return self._cards.book_payment(card, decision, Movement(
                merchant_id, card.account_id, at,
                payment_entries(record.terminal_id, record.txn, decision, "CARD_PAYMENT_OFFLINE"),
                key, "card_offline", answers[-1], digest))

        outcome, _ = settle(card, attempt, ATTEMPTS)
        if isinstance(outcome, Refused):
            kept = self._exceptions.keep(merchant_id, record, outcome.code, key, refusal_answer(outcome.code, None),
                                         digest, self._clock.now())
            return outcome.code if kept is None else self._known(merchant_id, record, kept, digest)
        if isinstance(outcome, Booked):
            return "OK"
        if isinstance(outcome, Repeat):
            return self._known(merchant_id, record, outcome.stored, digest)
        if outcome is not None:
            raise RuntimeError(f"offline record {key}: unexpected outcome {outcome}")
        # Busy: fail the whole upload (503); the agent sends it again and what was booked is found.
        raise ChannelUnavailable(f"card {record.card_no} busy")

    def _known(self, merchant_id: str, record: OfflineRecord, stored: StoredAnswer, digest: str) -> str:
        """The txn was seen before: booked (accepted), kept (its code again), or another request."""
        if stored.request_hash != digest:
            # The terminal used this txn for something else: keep the record for the merchant to see.
            self._exceptions.keep(merchant_id, record, "CONFLICT", None, {}, digest, self._clock.now())
            return "CONFLICT"
        return "OK" if stored.answer.get("ok") else str(stored.answer.get("code", "ERR012"))
