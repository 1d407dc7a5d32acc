"""Card payment at a terminal (CARD_PAY): decide with the canteen rules, book in one transaction.

Exactly once per (terminal, txn): the dedupe record is written in the payment's transaction with
the first answer, and a repeat gets that answer back. A refusal writes nothing, so a refused txn
asked again is decided again (the terminal only repeats a request it got no answer to).

DynamoDB calls per payment: one BatchGetItem (card + dedupe record) and one TransactWriteItems.
Through the edge API the request's nonce is handed in unclaimed: a booked payment claims it in its
transaction; a refusal, a repeat or an error writes no transaction, so it claims the nonce with its
own PutItem. Either way a replayed signed request is refused (Unauthorized) and changes nothing.
When another payment on the same card lands between the two, the failed transaction hands back
the card as it now is and the payment is decided again; each failure means another payment (or a
recharge) succeeded, so `max_attempts` only bounds pathological bursts (answered ERR012, nothing
booked, and the terminal's retry of the same txn is safe).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable

from chalicelib.domain.canteen_decision import Charge, Refused, decide
from chalicelib.domain.cards import CardState, Wallet, paid_answer, refusal_answer
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import Conflict, Unauthorized
from chalicelib.domain.money import MAX_ORDER_FEN
from chalicelib.store.canteen_rules import CanteenRulesStore
from chalicelib.store.cards import Booked, CardStore, EntrySpec, Movement, NonceUsed, Repeat, Stale, StoredAnswer
from chalicelib.store.dedupe import DedupeStore, NonceClaim
from chalicelib.store.directory import Directory, TerminalInfo
from chalicelib.store.txn_voids import VOIDED_KIND

log = logging.getLogger(__name__)

NO_BALANCE_SHOWN = ("ERR001", "ERR002", "ERR008")  # not this merchant's card, or not its holder's hands


def txn_key(terminal_id: str, txn: int) -> str:
    """The same key QR orders use: a terminal never reuses a txn across kinds."""
    return f"txn#{terminal_id}#{txn}"


def card_request_hash(card_no: str, amount_fen: int) -> str:
    return hashlib.sha256(f"CARD|{card_no}|{amount_fen}".encode()).hexdigest()[:32]


def payment_entries(terminal_id: str, txn: int, charge: Charge, kind: str) -> tuple[EntrySpec, ...]:
    """One ledger line per wallet the payment took money from (a free meal still leaves one line)."""
    source = f"{terminal_id}#{txn}"
    parts = [(Wallet.SUBSIDY, charge.subsidy_fen), (Wallet.CASH, charge.cash_fen)]
    lines = [(w, fen) for w, fen in parts if fen] or [(Wallet.CASH, 0)]
    return tuple(EntrySpec(f"pay#{source}#{w.value}", w, -fen, kind, source) for w, fen in lines)


def settle(card: CardState | None, attempt: Callable[[CardState | None], object], attempts: int
           ) -> tuple[object | None, CardState | None]:
    """Run `attempt` on the card until its outcome is anything but Stale, each time on the card that
    the failed transaction handed back. Returns that outcome (None when every attempt went stale)
    and the card it was decided on. Every Stale means another write to the card succeeded."""
    for _ in range(attempts):
        outcome = attempt(card)
        if not isinstance(outcome, Stale):
            return outcome, card
        card = outcome.card
    return None, card


def repeat_answer(stored: StoredAnswer, digest: str) -> dict:
    if stored.kind == VOIDED_KIND:
        return stored.answer  # the edge agent voided this txn (services/card_voids.py): refused, never booked
    if stored.request_hash != digest:
        raise Conflict("this txn was used for another request")
    return stored.answer


class CardPaymentService:
    def __init__(self, cards: CardStore, rules: CanteenRulesStore, directory: Directory, clock: Clock,
                 max_attempts: int = 16, dedupe: DedupeStore | None = None) -> None:
        self._cards = cards
        self._dedupe = dedupe or DedupeStore()
        self._rules = rules
        self._directory = directory
        self._clock = clock
        self._max_attempts = max_attempts

    def pay(self, terminal: TerminalInfo, txn: int, card_no: str, amount_fen: int,
            nonce: NonceClaim | None = None) -> dict:
        """The answer to the terminal. `nonce`: the edge request's unclaimed nonce, used up by every
        answer (the caller claims it when this raises a DomainError other than Unauthorized)."""
        answer, booked = self._pay(terminal, txn, card_no, amount_fen, nonce)
        if not booked:
            self._claim(nonce)
        return answer

    def _claim(self, nonce: NonceClaim | None) -> None:
        if nonce is not None and not self._dedupe.claim(nonce):
            raise Unauthorized("nonce already used")

    def _pay(self, terminal: TerminalInfo, txn: int, card_no: str, amount_fen: int, nonce: NonceClaim | None
             ) -> tuple[dict, bool]:
        """The answer and whether this call booked it (and with it the nonce)."""
        if not 0 < amount_fen <= MAX_ORDER_FEN:
            return refusal_answer("ERR009", None), False
        merchant = self._directory.merchant(terminal.merchant_id)
        if merchant is None or merchant.status != "active":
            return refusal_answer("ERR011", None), False
        rules = self._rules.rules(terminal.merchant_id)
        key, digest = txn_key(terminal.terminal_id, txn), card_request_hash(card_no, amount_fen)
        card, stored = self._cards.read_for_payment(terminal.merchant_id, card_no, key)
        if stored is not None:
            return repeat_answer(stored, digest), False
        answers: list[dict] = []

        def attempt(card: CardState | None) -> object:
            if card is None:
                return Refused("ERR001")
            now = self._clock.now()
            decision = decide(rules, card, terminal.terminal_id, amount_fen, now)
            if isinstance(decision, Refused):
                return decision
            answers.append(paid_answer(decision.charged_fen, card.balance_fen - decision.charged_fen))
            return self._cards.book_payment(card, decision, Movement(
                terminal.merchant_id, card.account_id, now,
                payment_entries(terminal.terminal_id, txn, decision, "CARD_PAYMENT"),
                key, "card_txn", answers[-1], digest, nonce))

        outcome, card = settle(card, attempt, self._max_attempts)
        if isinstance(outcome, Refused):
            return refusal_answer(outcome.code, None if card is None or outcome.code in NO_BALANCE_SHOWN
                                  else card.balance_fen), False
        if isinstance(outcome, Booked):
            return answers[-1], True
        if isinstance(outcome, NonceUsed):
            raise Unauthorized("nonce already used")
        if isinstance(outcome, Repeat):
            return repeat_answer(outcome.stored, digest), False
        if outcome is not None:
            raise RuntimeError(f"card payment {key}: unexpected outcome {outcome}")
        log.warning("card payment %s: card %s busy after %d attempts", key, card_no, self._max_attempts)
        return refusal_answer("ERR012", None), False
