"""Decides a card payment at a terminal: the canteen rules, in the order the screen should explain.

Pure: the card state of one read and 'now' in, a Charge (what to debit and which conditions the
write must hold to) or a Refused code out. The store turns a Charge into one conditional
transaction, so a concurrent payment that made this decision stale makes the write fail instead
of breaking a limit.

Offline records and reversals move the same day/meal counters (decide_offline, rollback): an
offline meal counts towards the limits of the day and meal it was eaten in (its own time, Beijing),
and a reversed payment gives back what it counted, so the holder may pay again.
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
    meal: str | None  # "<date>#<meal code>"; None outside meal periods (or an offline record of an earlier meal)
    day_fresh: bool  # the card's day counters are from an earlier day and restart with this payment
    meal_fresh: bool
    # Caps the counters must still be within when the write lands (None: no limit):
    day_fen_cap: int | None = None  # day_fen before this payment <= cap
    day_count_cap: int | None = None
    meal_fen_cap: int | None = None
    meal_count_cap: int | None = None
    counted: bool = True  # False: the counters are left alone (an offline record of an earlier day)
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


def decide_offline(rules: CanteenRules, card: CardState, amount_fen: int, at: float,
                   book_anyway: bool) -> Charge | Refused:
    """An offline record the edge already accepted: only what can have changed since is checked
    (card status, balance); meal periods and limits were the edge's to apply at the time, so the
    limits never refuse it, but it counts towards them: the day and meal of `at` (the record's own
    time) take its amount, unless the card's counters have moved on to a later period already.
    With `book_anyway` (merchant policy "book") a lost card or an overdraft is booked all the same."""
    if amount_fen <= 0:
        return Refused("ERR009")
    refusal = status_refusal(card.status)
    # Only a lost card still holds its account; a cancelled or replaced one never takes a booking.
    if refusal and not (book_anyway and refusal == "ERR008"):
        return Refused(refusal)
    parts = split(amount_fen, card.cash_fen, card.subsidy_fen, rules.wallet_order, overdraft=book_anyway)
    if parts is None:
        return Refused("ERR007")
    when = beijing_datetime(at)
    day = when.date().isoformat()
    meal = rules.meal_at(when)
    meal_key = f"{day}#{meal.code}" if meal else None
    if card.day is not None and day < card.day:  # that day is over: its counters are gone
        return Charge(amount_fen, parts.subsidy_fen, parts.cash_fen, day, None, False, False,
                      counted=False, overdraft=book_anyway)
    if meal_key is not None and not _meal_is_current_or_later(rules, card.meal, meal_key):
        meal_key = None  # a meal before the one the card counts now: only the day takes it
    return Charge(amount_fen, parts.subsidy_fen, parts.cash_fen, day, meal_key, card.day != day,
                  meal_key is not None and card.meal != meal_key, overdraft=book_anyway)


def _meal_is_current_or_later(rules: CanteenRules, counted: str | None, meal_key: str) -> bool:
    """Whether the card's meal counters (`counted`, "<date>#<code>") may take a record of `meal_key`:
    the same meal, or a later one (which restarts them). Meals of one day are ordered by their
    start in the rules; a counted meal the rules no longer know is left alone."""
    if counted is None or counted == meal_key:
        return True
    counted_day, _, counted_code = counted.partition("#")
    day, _, code = meal_key.partition("#")
    if counted_day != day:
        return counted_day < day
    starts = {m.code: m.start_min for m in rules.meal_periods}
    return counted_code in starts and starts[counted_code] < starts[code]


@dataclass(frozen=True)
class Rollback:
    """What a reversal takes off the card's counters (each >= 0); all zero when they moved on."""

    day_fen: int = 0
    day_count: int = 0
    meal_fen: int = 0
    meal_count: int = 0

    @property
    def day_touched(self) -> bool:
        return bool(self.day_fen or self.day_count)

    @property
    def meal_touched(self) -> bool:
        return bool(self.meal_fen or self.meal_count)


def rollback(card: CardState, day: str | None, meal: str | None, charged_fen: int) -> Rollback:
    """A reversed payment that counted `charged_fen` (and one payment) in `day` and `meal` gives it
    back where the card still counts that period; a period that is over restarts anyway. Never
    below zero, whatever happened to the counters since."""
    day_fen = day_count = meal_fen = meal_count = 0
    if day is not None and card.day == day:
        day_fen, day_count = min(charged_fen, card.day_fen), min(1, card.day_count)
        if meal is not None and card.meal == meal:
            meal_fen, meal_count = min(charged_fen, card.meal_fen), min(1, card.meal_count)
    return Rollback(max(day_fen, 0), max(day_count, 0), max(meal_fen, 0), max(meal_count, 0))
