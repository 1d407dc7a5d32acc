"""Matching both ways, every difference kind, carrying late items over midnight, and the bank's totals."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from chalicelib.domain.clock import BEIJING
from chalicelib.domain.reconciliation import (
    DifferenceKind,
    Item,
    Totals,
    compare_totals,
    expected_fee,
    match,
    unbooked_payment,
)

DAY = date(2026, 11, 18)
END = datetime.combine(DAY + timedelta(days=1), time(0), BEIJING).timestamp()
NOON = END - 12 * 3600


def pay(ref: str, amount: int = 1250, at: float = NOON, fee: int | None = 8, status: str = "SUCCESS",
        source: str = "wechat") -> Item:
    return Item(source, "PAY", ref, amount, at, fee, status)


def refund(ref: str, amount: int = 300, at: float = NOON, fee: int | None = -2, status: str = "SUCCESS") -> Item:
    return Item("wechat", "REFUND", ref, amount, at, fee, status)


def kinds(result) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(d.kind.value, d.ref) for d in result.differences]


def test_a_clean_day_reports_nothing():
    ours = [pay("P1"), pay("P2", 84, fee=1, source="alipay"), refund("R1")]
    result = match(ours, list(reversed(ours)), END, DAY.isoformat())
    assert (result.differences, result.carried_ours, result.carried_theirs, result.matched) == ((), (), (), 3)


def test_every_kind_is_found():
    ours = [pay("P-ours-only"), pay("P-amount", 1250), pay("P-fee", 1250, fee=8), refund("R-status")]
    theirs = [pay("P-theirs-only"), pay("P-amount", 1205), pay("P-fee", 1250, fee=13),
              refund("R-status", status="PROCESSING")]

    result = match(ours, theirs, END, DAY.isoformat())

    assert sorted(kinds(result)) == [("AMOUNT_DIFFERS", "P-amount"), ("FEE_DIFFERS", "P-fee"),
                                     ("MISSING_OURS", "P-theirs-only"), ("MISSING_THEIRS", "P-ours-only"),
                                     ("STATUS_DIFFERS", "R-status")]
    missing = next(d for d in result.differences if d.kind is DifferenceKind.MISSING_OURS)
    unbooked = unbooked_payment(missing, "CLOSED")
    assert (unbooked.kind, unbooked.note) == (DifferenceKind.STATUS_DIFFERS, "our order is CLOSED")


def test_no_fee_opinion_means_no_fee_difference():
    assert match([pay("P1", fee=None)], [pay("P1", fee=999)], END, DAY.isoformat()).differences == ()


def test_items_near_midnight_are_carried_and_matched_the_next_day():
    late_refund_ours = refund("R-late", at=END + 3)  # we booked it just after midnight: tomorrow's ledger
    their_refund = refund("R-late", at=END - 2)       # the platform's bill: today
    our_payment = pay("P-late", at=END - 1)          # ours today, theirs tomorrow
    their_payment = pay("P-late", at=END + 1)

    today = match([our_payment], [their_refund], END, DAY.isoformat())
    assert today.differences == ()
    assert [i.ref for i in today.carried_ours] == ["P-late"] and [i.ref for i in today.carried_theirs] == ["R-late"]

    tomorrow = match([late_refund_ours], [their_payment], END + 86400, "2026-11-19",
                     today.carried_ours, today.carried_theirs)
    assert (tomorrow.differences, tomorrow.carried_ours, tomorrow.carried_theirs) == ((), (), ())


def test_a_carried_item_still_unmatched_is_reported_and_not_carried_again():
    today = match([pay("P-gone", at=END - 60)], [], END, DAY.isoformat())
    tomorrow = match([], [], END + 86400, "2026-11-19", today.carried_ours, ())

    assert kinds(tomorrow) == [("MISSING_THEIRS", "P-gone")]
    assert tomorrow.differences[0].note == "carried from 2026-11-18" and tomorrow.carried_ours == ()


def test_a_row_listed_twice_is_an_amount_difference():
    assert kinds(match([refund("R1")], [refund("R1"), refund("R1")], END, DAY.isoformat())) == \
        [("AMOUNT_DIFFERS", "R1")]


def test_expected_fees_mirror_on_refunds():
    assert (expected_fee("PAY", 1250, 6000), expected_fee("REFUND", 1250, 6000)) == (8, -8)


def test_bank_totals():
    ours = Totals(4168, 1750, 15, 2403)
    assert compare_totals(ours, ours) is None and compare_totals(None, None) is None
    assert compare_totals(ours, None) is DifferenceKind.MISSING_THEIRS
    assert compare_totals(None, ours) is DifferenceKind.MISSING_OURS
    assert compare_totals(ours, Totals(4168, 1749, 15, 2404)) is DifferenceKind.AMOUNT_DIFFERS
    assert compare_totals(ours, Totals(4168, 1750, 14, 2404)) is DifferenceKind.FEE_DIFFERS
