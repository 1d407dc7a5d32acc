"""Items near midnight are carried to the next day's match through the store (bills from a fake source)."""
from __future__ import annotations

from datetime import date, timedelta

from chalicelib.channels.base import ChannelState
from chalicelib.channels.bills import Bill, BillRow
from chalicelib.services.reconciliation import ReconciliationService
from chalicelib.store.directory import ChannelConfig
from chalicelib.store.settlement import JobRunStore, ReconciliationStore, SettlementStore
from tests.functional.settlement.ledger_support import at, move_clock, paid_order
from tests.support.world import seed_world

D = date(2026, 6, 10)
NEXT = D + timedelta(days=1)


class FakeBills:
    """The bills a platform would publish: rows by (wallet, day)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, date], list[BillRow]] = {}

    def add(self, day: date, row: BillRow) -> None:
        self.rows.setdefault((row.wallet, day), []).append(row)

    def __call__(self, config: ChannelConfig, day: date) -> Bill:
        return Bill(ChannelState.SUCCESS, tuple(self.rows.get((config.wallet, day), ())))


def test_late_items_are_carried_then_matched_and_a_lost_one_is_reported(container, clock, refunds, log_lines):
    world = seed_world(container, scheme=1)
    bills = FakeBills()
    service = ReconciliationService(SettlementStore(container.settings), ReconciliationStore(), container.orders,
                                    container.channels, bills, None, JobRunStore(), container.clock, log_lines.append)
    noon = paid_order(container, world, 999, at(D, 12))
    late_pay = paid_order(container, world, 1250, at(D, 23, 59, 50))        # ours on D, theirs just after midnight
    lost = paid_order(container, world, 300, at(D, 23, 50))                 # the platform never lists this one
    move_clock(clock, at(NEXT, 0, 0, 3))
    refunds.refund(world.merchant_id, noon.order_id, 999, 1)                # ours on D+1, theirs just before midnight
    refund_no = f"R{noon.order_id[1:]}M001"
    bills.add(D, BillRow("wechat", "PAY", noon.order_id, "TW1", "", 999, 6, "SUCCESS", at(D, 12)))
    bills.add(D, BillRow("wechat", "REFUND", noon.order_id, "TW1", refund_no, 999, -6, "SUCCESS", at(D, 23, 59, 58)))
    bills.add(NEXT, BillRow("wechat", "PAY", late_pay.order_id, "TW2", "", 1250, 8, "SUCCESS", at(NEXT, 0, 0, 5)))

    first = service.run(D, [world.merchant_id])
    second = service.run(NEXT, [world.merchant_id])

    assert (first.differences, first.carried, first.matched) == ([], 3, 1)
    assert second.carried == 0 and second.matched == 2
    assert [(d["kind"], d["ref"], d["note"]) for d in second.differences] == [
        ("MISSING_THEIRS", lost.order_id, "carried from 2026-06-10")]
    assert service.run(NEXT, [world.merchant_id]).differences == second.differences  # a re-run finds the same
    kinds = {item.kind for item in ReconciliationStore().of_day(D) if item.merchant_day.startswith(world.merchant_id)}
    assert kinds == {"CARRIED"}
