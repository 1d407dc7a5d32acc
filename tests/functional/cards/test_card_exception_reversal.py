"""A kept offline record that the merchant booked later is reversible like any booked card payment:
the money it took given back per wallet, the day/meal counters it moved given back, once, within
the reversal window counted from the merchant's booking. Whatever cannot be reversed (an open or
dismissed exception, another merchant's) is answered 404 and changes nothing."""
from __future__ import annotations

from tests.conftest import T0
from tests.support.card_world import card_snapshot, card_state, issue_card, limit_counters, operator_for, upload_offline
from tests.support.ledger_invariants import check_card_ledger
from tests.support.world import seed_world

CARD = "52000001"
DINNER = {"code": "dinner", "name": "晚餐", "start": "17:00", "end": "19:30"}  # T0 is 19:06 Beijing
LIMITS = {"meal_periods": [DINNER], "classes": {"staff": {"per_day_max_fen": 5_000, "per_meal_max_count": 3}}}
REVERSALS = "/cards/v1/reversals"


def _kept_and_booked(op, edge, world, txn: int, amount: int, ts: int) -> dict:  # type: ignore[no-untyped-def]
    """Upload a record the rules refuse (overdraft), then the merchant books it."""
    assert upload_offline(edge, world.terminal_id, CARD, txn, amount, ts)["rejected"] == [{"txn": txn, "code": "ERR007"}]
    status, booked = op.call("POST", f"/cards/v1/exceptions/{world.terminal_id}/{txn}", {"action": "book"})
    assert (status, booked["code"]) == (200, "OK")
    return booked


def test_a_booked_exception_is_reversed_once_with_its_counters(http, edge, world, cs, clock) -> None:
    cs.rules.put_rules(world.merchant_id, LIMITS, None, clock.now())
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000, class_code="staff")
    op = operator_for(http, cs, world.merchant_id)
    booked = _kept_and_booked(op, edge, world, 1, 1_200, int(T0) - 600)  # 18:56, dinner
    assert (booked["balance_fen"], card_state(world.merchant_id, CARD)["cash_fen"]) == (-200, -200)
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 1_200, 1, "2026-11-18#dinner", 1_200, 1)

    status, body = op.call("POST", REVERSALS, {"terminal_id": world.terminal_id, "txn": 1})
    assert (status, body["reversed_fen"], body["balance_fen"], body["cash_fen"]) == (200, 1_200, 1_000, 1_000)
    assert body["paid_on"] == "2026-11-18"
    assert card_state(world.merchant_id, CARD)["cash_fen"] == 1_000
    assert limit_counters(world.merchant_id, CARD) == ("2026-11-18", 0, 0, "2026-11-18#dinner", 0, 0)  # the room is free again
    after = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    # A repeat answers the first answer and gives nothing back twice.
    assert op.call("POST", REVERSALS, {"terminal_id": world.terminal_id, "txn": 1}) == (status, body)
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == after
    (ledger,) = after["ledgers"].values()
    assert sorted((e["kind"], e["wallet"], e["amount_fen"]) for e in ledger if e["entry_id"].endswith(f"#{1}#cash")) \
        == [("CARD_PAYMENT_OFFLINE", "cash", -1_200), ("REVERSAL", "cash", 1_200)]
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["CARD_PAYMENT_OFFLINE"], totals.by_kind["REVERSAL"], totals.balances_fen) == (
        -1_200, 1_200, 1_000)
    assert totals.payments_booked == 1


def test_the_window_runs_from_the_merchants_booking(http, edge, world, cs, clock) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=500)
    op = operator_for(http, cs, world.merchant_id)
    three_days_ago = int(T0) - 3 * 86_400
    _kept_and_booked(op, edge, world, 1, 800, three_days_ago)  # the meal: older than the 24 h window
    _kept_and_booked(op, edge, world, 2, 100, three_days_ago)
    assert card_state(world.merchant_id, CARD)["cash_fen"] == -400
    status, body = op.call("POST", REVERSALS, {"terminal_id": world.terminal_id, "txn": 1})
    assert (status, body["reversed_fen"], body["balance_fen"], body["paid_on"]) == (200, 800, 400, "2026-11-15")
    clock.advance(86_401)  # a day after the bookings: txn 2 can no longer be reversed
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    status, error = op.call("POST", REVERSALS, {"terminal_id": world.terminal_id, "txn": 2})
    assert (status, error["code"], error["message"]) == (409, "CONFLICT", "the reversal window has passed")
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before
    totals = check_card_ledger(world.merchant_id)
    assert (totals.by_kind["CARD_PAYMENT_OFFLINE"], totals.by_kind["REVERSAL"], totals.balances_fen) == (
        -900, 800, 400)


def test_an_exception_not_booked_or_another_merchants_cannot_be_reversed(http, edge, world, cs, clock,
                                                                         container) -> None:
    issue_card(cs, world.merchant_id, CARD, cash_fen=1_000)
    op = operator_for(http, cs, world.merchant_id)
    assert upload_offline(edge, world.terminal_id, CARD, 1, 1_500, int(T0))["rejected"] == [{"txn": 1, "code": "ERR007"}]  # left open
    assert upload_offline(edge, world.terminal_id, CARD, 2, 1_600, int(T0))["rejected"] == [{"txn": 2, "code": "ERR007"}]
    assert op.call("POST", f"/cards/v1/exceptions/{world.terminal_id}/2", {"action": "dismiss"})[0] == 200
    _kept_and_booked(op, edge, world, 3, 1_100, int(T0))
    other = operator_for(http, cs, seed_world(container).merchant_id)
    before = card_snapshot(world.merchant_id, [CARD], world.terminal_id)
    for caller, txn in ((op, 1), (op, 2), (other, 3)):
        status, error = caller.call("POST", REVERSALS, {"terminal_id": world.terminal_id, "txn": txn})
        assert (status, error["code"]) == (404, "NOT_FOUND"), txn
    assert card_snapshot(world.merchant_id, [CARD], world.terminal_id) == before
    assert [e.record.txn for e in cs.exceptions.of_merchant(world.merchant_id)] == [1]  # still open
    check_card_ledger(world.merchant_id, allow_negative=True)  # the booked overdraft stands
    assert card_state(world.merchant_id, CARD)["cash_fen"] == -100
