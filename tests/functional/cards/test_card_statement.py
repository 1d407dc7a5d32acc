"""The counter's card statement: entries of a date range with opening and closing balance and the
running balance, paged; CSV; the same account by holder and across a replaced card; foreign cards
are not found; bad queries are refused."""
from __future__ import annotations

import csv
import io
import json

import pytest

from tests.support.card_world import grant_subsidy, issue_card, operator_for
from tests.support.ledger_invariants import check_card_ledger
from tests.support.world import seed_world

CARD, NEW_CARD = "75000001", "75000002"
DAY1, DAY2, DAY3 = "2026-11-18", "2026-11-19", "2026-11-20"


def _pay(edge, world, txn: int, amount: int, card: str = CARD) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(edge.post("/edge/v1/cards/pay", {"terminal_id": world.terminal_id, "txn": txn, "card": card,
                                                       "amount_fen": amount, "ts": 1}).body)


@pytest.fixture
def history(http, edge, world, cs, clock):  # type: ignore[no-untyped-def]
    """Three days of one account: day 1 recharge 10.00, subsidy 2.00, pay 3.00; day 2 pay 1.00 and
    its reversal, pay 4.00; day 3 the card is replaced and pays 0.50 with the new card."""
    holder_id = issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    clock.advance(60)  # statements order entries by time: a minute between each event
    grant_subsidy(cs, world.merchant_id, CARD, 200)
    clock.advance(60)
    assert _pay(edge, world, 1, 300)["code"] == "OK"
    clock.advance(86_400)
    op = operator_for(http, cs, world.merchant_id)
    assert _pay(edge, world, 2, 100)["code"] == "OK"
    clock.advance(60)
    assert op.call("POST", "/cards/v1/reversals", {"terminal_id": world.terminal_id, "txn": 2})[0] == 200
    clock.advance(60)
    assert _pay(edge, world, 3, 400)["code"] == "OK"
    clock.advance(86_400)
    cs.admin.replace(world.merchant_id, CARD, NEW_CARD)
    assert _pay(edge, world, 4, 50, NEW_CARD)["code"] == "OK"
    assert check_card_ledger(world.merchant_id).balances_fen == 1_200 - 300 - 400 - 50
    return op, holder_id


def _get(op, path: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    answer = op.http.get(path, headers=op._headers())
    return answer.status_code, json.loads(answer.body)


def test_a_days_statement_opens_where_the_day_before_closed(history) -> None:
    op, _ = history
    status, day1 = _get(op, f"/cards/v1/statements/cards/{CARD}?from={DAY1}")
    assert status == 200 and day1["opening"] == {"cash_fen": 0, "subsidy_fen": 0, "balance_fen": 0}
    assert [(e["kind"], e["wallet"], e["amount_fen"]) for e in day1["entries"]] == [
        ("RECHARGE", "cash", 1_000), ("SUBSIDY_GRANT", "subsidy", 200), ("CARD_PAYMENT", "cash", -100),
        ("CARD_PAYMENT", "subsidy", -200)]  # one payment from both wallets: two lines, by id
    assert day1["closing"] == {"cash_fen": 900, "subsidy_fen": 0, "balance_fen": 900}
    status, day2 = _get(op, f"/cards/v1/statements/cards/{CARD}?from={DAY2}&to={DAY2}")
    assert day2["opening"] == day1["closing"] and day2["count"] == 3
    assert [(e["kind"], e["amount_fen"], e["balance_fen"]) for e in day2["entries"]] == [
        ("CARD_PAYMENT", -100, 800), ("REVERSAL", 100, 900), ("CARD_PAYMENT", -400, 500)]
    assert day2["closing"]["balance_fen"] == 500 and day2["next_cursor"] is None


def test_the_whole_range_closes_at_the_cards_balance_by_old_card_new_card_or_holder(history) -> None:
    op, holder_id = history
    answers = [_get(op, f"/cards/v1/statements/{path}?from={DAY1}&to={DAY3}")[1]
               for path in (f"cards/{CARD}", f"cards/{NEW_CARD}", f"holders/{holder_id}")]
    assert {json.dumps(a["entries"]) for a in answers} == {json.dumps(answers[0]["entries"])}
    assert all(a["closing"]["balance_fen"] == 450 and a["count"] == 8 for a in answers)
    assert _get(op, f"/cards/v1/cards/{NEW_CARD}")[1]["balance_fen"] == 450


def test_pages_follow_each_other_without_gaps_or_repeats(history) -> None:
    op, _ = history
    whole = _get(op, f"/cards/v1/statements/cards/{CARD}?from={DAY1}&to={DAY3}")[1]["entries"]
    seen, cursor, pages = [], None, 0
    while pages < 10:
        query = f"from={DAY1}&to={DAY3}&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = _get(op, f"/cards/v1/statements/cards/{CARD}?{query}")[1]
        assert len(page["entries"]) <= 3 and page["opening"]["balance_fen"] == 0
        assert page["closing"]["balance_fen"] == 450
        seen += page["entries"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == whole


def test_csv_holds_opening_entries_and_closing(history) -> None:
    op, _ = history
    answer = op.http.get(f"/cards/v1/statements/cards/{CARD}?from={DAY2}&to={DAY3}&format=csv", headers=op._headers())
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.body.decode())))
    assert [(r["kind"], r["balance_fen"]) for r in rows] == [
        ("OPENING", "900"), ("CARD_PAYMENT", "800"), ("REVERSAL", "900"), ("CARD_PAYMENT", "500"),
        ("CARD_PAYMENT", "450"), ("CLOSING", "450")]


def test_another_merchants_card_or_holder_is_not_found(history, http, cs, container) -> None:
    _, holder_id = history
    stranger = operator_for(http, cs, seed_world(container).merchant_id)
    for path in (f"cards/{CARD}", f"holders/{holder_id}", "cards/nope"):
        status, body = _get(stranger, f"/cards/v1/statements/{path}?from={DAY1}")
        assert (status, body["code"]) == (404, "NOT_FOUND")
        assert "entries" not in body


@pytest.mark.parametrize("query", ["", "from=2026-13-01", f"from={DAY2}&to={DAY1}", f"from={DAY1}&to=2027-11-19",
                                   f"from={DAY1}&limit=0", f"from={DAY1}&limit=501", f"from={DAY1}&limit=x",
                                   f"from={DAY1}&cursor=%%%", f"from={DAY1}&format=xml"])
def test_bad_queries_are_refused(history, query) -> None:  # type: ignore[no-untyped-def]
    op, _ = history
    status, body = _get(op, f"/cards/v1/statements/cards/{CARD}?{query}")
    assert (status, body["code"]) == (400, "INVALID_REQUEST"), body


def test_without_the_operator_token_nothing_is_shown(history, http) -> None:
    assert http.get(f"/cards/v1/statements/cards/{CARD}?from={DAY1}").status_code == 401
