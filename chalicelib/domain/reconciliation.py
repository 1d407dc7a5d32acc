"""Matching our records of a merchant-day against a platform's bill, both ways. Pure: no I/O.

An Item is one money movement as one side saw it: a payment (key: the out_trade_no, our order id) or a
refund (key: the out_refund_no), per source (the wallet whose bill it is on). Each key is looked up on
both sides:

    MISSING_OURS     on the bill, not in our ledger (the service turns this into STATUS_DIFFERS when we
                     hold the order but never booked the payment: we say CREATED/CLOSED, they say paid)
    MISSING_THEIRS   in our ledger, not on the bill
    AMOUNT_DIFFERS   both, different amounts
    STATUS_DIFFERS   both, but the platform does not say SUCCESS (a refund still PROCESSING or FAILED)
    FEE_DIFFERS      both, same amount, but the fee is not the one we expect (only where we know the fee
                     the platform must charge: direct merchants, at their own rate)

Late items: a movement near midnight can be on one side's day and the other side's next day (a refund
we booked at 00:00:03 that the platform dated 23:59:58). An unmatched item from the last `window_s`
seconds of the day is not reported yet but carried to the next day's match, where it is matched against
that day's items; still unmatched there, it is reported on that day.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Iterable

from chalicelib.domain.money import apply_rate

CARRY_WINDOW_S = 30 * 60


class DifferenceKind(str, Enum):
    MISSING_OURS = "MISSING_OURS"
    MISSING_THEIRS = "MISSING_THEIRS"
    AMOUNT_DIFFERS = "AMOUNT_DIFFERS"
    STATUS_DIFFERS = "STATUS_DIFFERS"
    FEE_DIFFERS = "FEE_DIFFERS"


@dataclass(frozen=True)
class Item:
    source: str  # "wechat" / "alipay": whose bill
    kind: str  # PAY or REFUND
    ref: str  # out_trade_no (PAY) or out_refund_no (REFUND)
    amount_fen: int  # positive
    at: float  # when this side booked it
    fee_fen: int | None = None  # None: this side has no opinion on the fee
    status: str = "SUCCESS"
    trade_no: str = ""
    carried_from: str = ""  # the day an item was carried from

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.kind, self.ref)


@dataclass(frozen=True)
class Difference:
    kind: DifferenceKind
    source: str
    ref: str
    ours: Item | None
    theirs: Item | None
    note: str = ""

    @property
    def key(self) -> str:
        item = self.ours or self.theirs
        return f"{self.source}#{self.kind.value}#{item.kind if item else '-'}#{self.ref}"


@dataclass(frozen=True)
class MatchResult:
    differences: tuple[Difference, ...]
    carried_ours: tuple[Item, ...]
    carried_theirs: tuple[Item, ...]
    matched: int


def expected_fee(kind: str, amount_fen: int, fee_rate_ppm: int) -> int:
    """The fee a platform charges a direct merchant: per payment, half up; a refund gives its fee back."""
    return apply_rate(amount_fen if kind == "PAY" else -amount_fen, fee_rate_ppm)


def _compare(ours: Item, theirs: Item) -> Difference | None:
    if ours.amount_fen != theirs.amount_fen:
        return Difference(DifferenceKind.AMOUNT_DIFFERS, ours.source, ours.ref, ours, theirs)
    if theirs.status != "SUCCESS":
        return Difference(DifferenceKind.STATUS_DIFFERS, ours.source, ours.ref, ours, theirs)
    if ours.fee_fen is not None and theirs.fee_fen is not None and ours.fee_fen != theirs.fee_fen:
        return Difference(DifferenceKind.FEE_DIFFERS, ours.source, ours.ref, ours, theirs)
    return None


def _index(items: Iterable[Item]) -> dict[tuple[str, str, str], Item]:
    indexed: dict[tuple[str, str, str], Item] = {}
    for item in items:
        if item.key in indexed:  # two rows for one key: add them (a bill listing one refund twice is a difference)
            indexed[item.key] = replace(indexed[item.key], amount_fen=indexed[item.key].amount_fen + item.amount_fen)
        else:
            indexed[item.key] = item
    return indexed


def match(ours: Iterable[Item], theirs: Iterable[Item], day_end: float, day: str,
          carried_ours: Iterable[Item] = (), carried_theirs: Iterable[Item] = (),
          window_s: float = CARRY_WINDOW_S) -> MatchResult:
    """Match the day's items (and the items carried from the day before) both ways."""
    our_index = _index(list(ours) + list(carried_ours))
    their_index = _index(list(theirs) + list(carried_theirs))
    differences: list[Difference] = []
    carry_ours: list[Item] = []
    carry_theirs: list[Item] = []
    matched = 0
    for key in sorted(set(our_index) | set(their_index)):
        mine, theirs_item = our_index.get(key), their_index.get(key)
        if mine is not None and theirs_item is not None:
            matched += 1
            found = _compare(mine, theirs_item)
            if found is not None:
                differences.append(found)
            continue
        alone = mine or theirs_item
        assert alone is not None
        if not alone.carried_from and alone.at >= day_end - window_s:
            (carry_ours if mine else carry_theirs).append(replace(alone, carried_from=day))
            continue
        kind = DifferenceKind.MISSING_THEIRS if mine else DifferenceKind.MISSING_OURS
        note = f"carried from {alone.carried_from}" if alone.carried_from else ""
        differences.append(Difference(kind, alone.source, alone.ref, mine, theirs_item, note))
    return MatchResult(tuple(differences), tuple(carry_ours), tuple(carry_theirs), matched)


def unbooked_payment(difference: Difference, order_status: str) -> Difference:
    """A bill's payment that we did not book although we hold the order: the statuses differ."""
    return replace(difference, kind=DifferenceKind.STATUS_DIFFERS, note=f"our order is {order_status}")


@dataclass(frozen=True)
class Totals:
    """A wallet's day as settled by us or by the bank (the bank file's line)."""

    gross_fen: int
    refunds_fen: int
    fee_fen: int
    net_fen: int


def compare_totals(ours: Totals | None, theirs: Totals | None) -> DifferenceKind | None:
    if ours is None and theirs is None:
        return None
    if ours is None:
        return DifferenceKind.MISSING_OURS
    if theirs is None:
        return DifferenceKind.MISSING_THEIRS
    if (ours.gross_fen, ours.refunds_fen) != (theirs.gross_fen, theirs.refunds_fen):
        return DifferenceKind.AMOUNT_DIFFERS
    if ours.fee_fen != theirs.fee_fen or ours.net_fen != theirs.net_fen:
        return DifferenceKind.FEE_DIFFERS
    return None
