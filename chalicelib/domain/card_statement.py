"""A card account's statement over Beijing dates: opening balance, the entries of the range with
the running balance after each, closing balance; paged by an opaque cursor. Pure: entries in, a
page out.

Entries are ordered by their time (an offline record's is when the meal was eaten, so a record
uploaded late sits where it happened; the running balance follows that order) and then by id.
The opening balance is the sum of every entry before the first day, per wallet, so a statement is
right whatever was booked since; the closing balance is opening plus the range.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date

from chalicelib.domain.errors import InvalidRequest

MAX_PAGE = 500


@dataclass(frozen=True)
class StatementEntry:
    entry_id: str
    at: float
    business_date: str  # Beijing date
    kind: str
    wallet: str  # cash or subsidy
    amount_fen: int  # signed: + into the account
    source: str  # what booked it: "<terminal>#<txn>", "<wallet>#<trade>", ...

    @property
    def order_key(self) -> tuple[float, str]:
        return self.at, self.entry_id


@dataclass(frozen=True)
class Balance:
    cash_fen: int = 0
    subsidy_fen: int = 0

    @property
    def balance_fen(self) -> int:
        return self.cash_fen + self.subsidy_fen

    def plus(self, entry: StatementEntry) -> "Balance":
        if entry.wallet == "subsidy":
            return Balance(self.cash_fen, self.subsidy_fen + entry.amount_fen)
        return Balance(self.cash_fen + entry.amount_fen, self.subsidy_fen)

    def to_dict(self) -> dict:
        return {"cash_fen": self.cash_fen, "subsidy_fen": self.subsidy_fen, "balance_fen": self.balance_fen}


@dataclass(frozen=True)
class StatementLine:
    entry: StatementEntry
    after: Balance  # the account's balance after this entry

    def to_dict(self) -> dict:
        e = self.entry
        return {"entry_id": e.entry_id, "at": e.at, "date": e.business_date, "kind": e.kind, "wallet": e.wallet,
                "amount_fen": e.amount_fen, "source": e.source, "balance_fen": self.after.balance_fen}


@dataclass(frozen=True)
class StatementPage:
    first: date
    last: date
    opening: Balance
    closing: Balance
    count: int  # entries in the whole range
    lines: tuple[StatementLine, ...]  # this page
    next_cursor: str | None


def encode_cursor(key: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]!r}|{key[1]}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        at, _, entry_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return float(at), entry_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest("cursor is not one this API gave") from None


def statement(entries: list[StatementEntry], first: date, last: date, limit: int | None,
              cursor: str | None = None) -> StatementPage:
    """The page of the range after `cursor` (None: the first), at most `limit` lines (None: all)."""
    if limit is not None and not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit is 1..{MAX_PAGE}")
    after = decode_cursor(cursor) if cursor else None
    lo, hi = first.isoformat(), last.isoformat()
    opening = Balance()
    in_range: list[StatementEntry] = []
    for entry in sorted(entries, key=lambda e: e.order_key):
        if entry.business_date < lo:
            opening = opening.plus(entry)
        elif entry.business_date <= hi:
            in_range.append(entry)
    running, lines = opening, []
    for entry in in_range:
        running = running.plus(entry)
        lines.append(StatementLine(entry, running))
    closing = running
    if after is not None:
        lines = [line for line in lines if line.entry.order_key > after]
    page = lines if limit is None else lines[:limit]
    more = limit is not None and len(lines) > limit
    return StatementPage(first, last, opening, closing, len(in_range), tuple(page),
                         encode_cursor(page[-1].entry.order_key) if more else None)


CSV_COLUMNS = ("date", "at", "kind", "wallet", "amount_fen", "balance_fen", "source", "entry_id")
MAX_DAYS = 366


def date_range(first_text: str | None, last_text: str | None) -> tuple[date, date]:
    """from..to as Beijing dates (to defaults to from), at most MAX_DAYS days, or InvalidRequest."""
    try:
        first = date.fromisoformat(first_text or "")
        last = date.fromisoformat(last_text) if last_text else first
    except ValueError:
        raise InvalidRequest("from and to are dates, YYYY-MM-DD") from None
    if not 0 <= (last - first).days < MAX_DAYS:
        raise InvalidRequest(f"from..to is 1 to {MAX_DAYS} days, from first")
    return first, last
