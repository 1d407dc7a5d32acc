"""The statement arithmetic: opening from everything before the range, running balances, closing,
pages by cursor, and refusals of bad ranges and cursors."""
from __future__ import annotations

from datetime import date

import pytest

from chalicelib.domain.card_statement import (Balance, StatementEntry, date_range, decode_cursor, encode_cursor,
                                              statement)
from chalicelib.domain.errors import InvalidRequest

D1, D2, D3 = date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)


def _entry(entry_id: str, at: float, day: date, amount: int, wallet: str = "cash", kind: str = "X") -> StatementEntry:
    return StatementEntry(entry_id, at, day.isoformat(), kind, wallet, amount, "src")


ENTRIES = [_entry("c", 30, D2, -200), _entry("a", 10, D1, 1_000), _entry("b", 20, D1, 300, "subsidy"),
           _entry("e", 50, D3, 5), _entry("d", 30, D2, -100, "subsidy")]


def test_opening_running_and_closing() -> None:
    page = statement(ENTRIES, D2, D2, None)
    assert page.opening == Balance(1_000, 300)
    assert [(line.entry.entry_id, line.after.balance_fen) for line in page.lines] == [("c", 1_100), ("d", 1_000)]
    assert page.closing == Balance(800, 200) and page.count == 2 and page.next_cursor is None


def test_pages_cover_the_range_once() -> None:
    seen, cursor = [], None
    for _ in range(5):
        page = statement(ENTRIES, D1, D3, 2, cursor)
        seen += [line.entry.entry_id for line in page.lines]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["a", "b", "c", "d", "e"]


def test_cursor_round_trip_and_refusals() -> None:
    assert decode_cursor(encode_cursor((1_795_000_000.125, "pay#T1#7#cash"))) == (1_795_000_000.125, "pay#T1#7#cash")
    with pytest.raises(InvalidRequest):
        decode_cursor("%%%")
    for limit in (0, 501):
        with pytest.raises(InvalidRequest):
            statement(ENTRIES, D1, D1, limit)


@pytest.mark.parametrize("first,last", [(None, None), ("2026-11-19", "2026-11-18"), ("2026-11-18", "2027-11-19"),
                                        ("x", None)])
def test_bad_ranges(first, last) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest):
        date_range(first, last)
    assert date_range("2026-11-18", None) == (D1, D1)
