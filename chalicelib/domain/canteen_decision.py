"""Decides a card payment at a terminal: the canteen rules, in the order the screen should explain.

Pure: the card state of one read and 'now' in, a Charge (what to debit and which conditions the
write must hold to) or a Refused code out. The store turns a Charge into one conditional
transaction, so a concurrent payment that made this decision stale makes the write fail instead
of breaking a limit.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.canteen_rules import CanteenRules
from chalicelib.domain.canteen_wallets import split
from chalicelib.domain.cards import CardState, status_refusal
from chalicelib.domain.clock import beijing_datetime
from chalicelib.domain.money import apply_rate


@dataclass(frozen=True)
class Refused:
    code: str


@dataclass(frozen=True)
class Charge:
    charged_fen: int  # after the class discount
    subsidy_fen: int
    cash_fen: int
    day: str  # Beijing date of this payment
    meal: str | None  # "<date>#<meal code>", None outside meal periods
    day_fresh: bool  # the card's day counters are from an earlier day and restart with this payment
    meal_fresh: bool
    # Caps the counters must still be within when the write lands (None: no limit):
    day_fen_cap: int | None = None  # day_fen before this payment <= cap
    day_count_cap: int | None = None
    meal_fen_cap: int | None = None
    meal_count_cap: int | None = None
    counted: bool = True  # False: the limit counters are left alone (offline records)
    overdraft: bool = False  # True: cash may go below zero (merchant policy for offline records)


def _cap(limit: int | None, used: int, adding: int) -> tuple[bool, int | None]:
    """(within the limit, the highest value the counter may have before adding)."""
    if limit is None:
        return True, None
    return used + adding <= limit, limit - adding


def decide(rules: CanteenRules, card: CardState, terminal_id: str, amount_fen: int, now: float) -> Charge | Refused:
    refusal = status_refusal(card.status)
    if refusal:
        return Refused(refusal)
    klass = rules.class_rules(card.class_code)
    if klass.terminals is not None and terminal_id not in klass.terminals:
        return Refused("ERR003")
    when = beijing_datetime(now)
    meal = rules.meal_at(when)
    if meal is None and rules.restrict_to_meals:
        return Refused("ERR006")
    meal_code = meal.code if meal else None
    price = rules.terminal_mode(terminal_id).fixed_price(meal_code)
    if amount_fen <= 0 or (price is not None and amount_fen != price):
        return Refused("ERR009")
    charged = apply_rate(amount_fen, klass.rate_for(meal_code))
    if klass.per_payment_max_fen is not None and charged > klass.per_payment_max_fen:
        return Refused("ERR010")

    day = when.date().isoformat()
    meal_key = f"{day}#{meal_code}" if meal_code else None
    day_fresh = card.day != day
    meal_fresh = card.meal != meal_key
    day_fen, day_count = (0, 0) if day_fresh else (card.day_fen, card.day_count)
    meal_fen, meal_count = (0, 0) if meal_fresh else (card.meal_fen, card.meal_count)
    day_count_ok, day_count_cap = _cap(klass.per_day_max_count, day_count, 1)
    meal_count_ok, meal_count_cap = _cap(klass.per_meal_max_count if meal_key else None, meal_count, 1)
    if not (day_count_ok and meal_count_ok):
        return Refused("ERR004")
    day_fen_ok, day_fen_cap = _cap(klass.per_day_max_fen, day_fen, charged)
    meal_fen_ok, meal_fen_cap = _cap(klass.per_meal_max_fen if meal_key else None, meal_fen, charged)
    if not (day_fen_ok and meal_fen_ok):
        return Refused("ERR005")
    parts = split(charged, card.cash_fen, card.subsidy_fen, rules.wallet_order)
    if parts is None:
        return Refused("ERR007")
    return Charge(charged, parts.subsidy_fen, parts.cash_fen, day, meal_key, day_fresh, meal_fresh,
                  day_fen_cap, day_count_cap, meal_fen_cap, meal_count_cap)


def decide_offline(card: CardState, amount_fen: int, wallet_order: str, book_anyway: bool) -> Charge | Refused:
    """An offline record the edge already accepted: only what can have changed since is checked
    (card status, balance); meal periods and limits were the edge's to apply at the time.
    With `book_anyway` (merchant policy "book") a lost card or an overdraft is booked all the same."""
    if amount_fen <= 0:
        return Refused("ERR009")
    refusal = status_refusal(card.status)
    # Only a lost card still holds its account; a cancelled or replaced one never takes a booking.
    if refusal and not (book_anyway and refusal == "ERR008"):
        return Refused(refusal)
    parts = split(amount_fen, card.cash_fen, card.subsidy_fen, wallet_order, overdraft=book_anyway)
    if parts is None:
        return Refused("ERR007")
    return Charge(amount_fen, parts.subsidy_fen, parts.cash_fen, card.day or "", card.meal, False, False,
                  counted=False, overdraft=book_anyway)
