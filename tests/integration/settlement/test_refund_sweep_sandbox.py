"""The refund sweep job through the real channels and the sandbox: WeChat and Alipay refunds the platform
finishes later are booked by the sweep, once; an Alipay refund that failed is sent again under the same
number (Alipay's rule) and released when Alipay refuses it; a late payment's refund is booked only when
the platform confirms it. Assertions name this module's refunds: the stack's tables are shared with the
other settlement modules."""
from __future__ import annotations

from collections import Counter

from chalicelib.channels.base import ScanPayRequest, TradeStatus
from chalicelib.domain.clock import business_date
from chalicelib.domain.orders import Wallet
from chalicelib.jobs.refunds import refund_sweep
from chalicelib.services.payments import late_refund_no
from chalicelib.services.refunds import out_refund_no
from chalicelib.store.orders import PaymentBooking
from chalicelib.store.settlement_totals import read_totals
from tests.integration.settlement.recon_support import Stack
from tests.integration.settlement.test_refunds_sandbox import (
    ALIPAY_CODE,
    WECHAT_CODE,
    control,
    money,
    sandbox_refund_status,
    scan_pay,
)

SECOND_WECHAT_CODE = "134567890123459876"


def refund_totals(stack: Stack, merchant_id: str) -> dict[str, int]:
    """The refund counters of today's totals (the stack's fixed clock), summed over shards."""
    summed: Counter[str] = Counter()
    for channel, counters in read_totals(merchant_id, business_date(stack.clock.now()).isoformat()):
        summed.update({f"{channel}:{k}": v for k, v in counters.items() if "refund" in k.lower() and v})
    return dict(summed)


def sandbox_refunds(stack: Stack, order_id: str) -> list[tuple[str, str, int, str]]:
    return sorted((t.platform, r.out_refund_no, r.amount_fen, r.status) for t in stack.sandbox.ctx.book.all()
                  if t.out_trade_no == order_id for r in t.refunds)


def test_the_sweep_books_wechat_and_alipay_refunds_once_the_platforms_finish_them(stack):
    merchant = stack.direct.merchant_id
    wechat_order = scan_pay(stack, stack.direct, 1000, WECHAT_CODE)
    alipay_order = scan_pay(stack, stack.direct, 600, ALIPAY_CODE)
    control(stack, "/sandbox/refunds", {"outcome": "processing", "count": 1})
    control(stack, "/sandbox/refunds", {"outcome": "processing", "count": 1, "wallet": "alipay"})
    refunds, sweep = stack.container.refunds, refund_sweep(stack.container, lambda line: None)
    wechat_no, alipay_no = out_refund_no(wechat_order, 1), out_refund_no(alipay_order, 1)
    totals_before = refund_totals(stack, merchant)

    assert refunds.refund(merchant, wechat_order, 400, 1)["status"] == "PENDING"
    assert refunds.refund(merchant, alipay_order, 600, 1)["status"] == "PENDING"  # fund_change N
    first = sweep.run()

    assert {wechat_no, alipay_no} <= set(first.pending)
    assert money(stack, wechat_order) == ("PAID", 0, 400, [("payment", 1000)])
    assert money(stack, alipay_order) == ("PAID", 0, 600, [("payment", 600)])
    assert refund_totals(stack, merchant) == totals_before
    assert (sandbox_refund_status(stack, wechat_no), sandbox_refund_status(stack, alipay_no)) == (
        "PROCESSING", "PROCESSING")

    for refund_no in (wechat_no, alipay_no):
        assert control(stack, "/sandbox/refunds/finish", {"out_refund_no": refund_no, "status": "SUCCESS"})["ok"]
    second = sweep.run()

    assert {wechat_no, alipay_no} <= set(second.booked)
    assert money(stack, wechat_order) == ("PARTIALLY_REFUNDED", 400, 0, [
        ("payment", 1000), (f"refund#{wechat_no}", -400)])
    assert money(stack, alipay_order) == ("REFUNDED", 600, 0, [("payment", 600), (f"refund#{alipay_no}", -600)])
    booked_totals = Counter(refund_totals(stack, merchant))
    booked_totals.subtract(totals_before)
    assert {k: v for k, v in booked_totals.items() if v} == {
        "wechat_v2:S|wechat|refunds": 1, "wechat_v2:S|wechat|refunds_fen": 400,
        "alipay:S|alipay|refunds": 1, "alipay:S|alipay|refunds_fen": 600}

    # Re-runs: both are off the queue; nothing is booked or sent twice.
    after = (money(stack, wechat_order), money(stack, alipay_order), refund_totals(stack, merchant))
    third = sweep.run()
    assert not {wechat_no, alipay_no} & set(third.booked + third.pending + third.released)
    assert refunds.refund(merchant, alipay_order, 600, 1)["status"] == "REFUNDED"  # the operator's repeat
    assert (money(stack, wechat_order), money(stack, alipay_order), refund_totals(stack, merchant)) == after
    assert sandbox_refunds(stack, wechat_order) == [("wechat_v2", wechat_no, 400, "SUCCESS")]
    assert sandbox_refunds(stack, alipay_order) == [("alipay", alipay_no, 600, "SUCCESS")]


def test_an_alipay_refund_that_failed_is_sent_again_and_released_when_refused(stack):
    merchant = stack.direct.merchant_id
    refunds, sweep = stack.container.refunds, refund_sweep(stack.container, lambda line: None)

    def failed_at_alipay(amount: int) -> tuple[str, str]:
        order_id = scan_pay(stack, stack.direct, amount, ALIPAY_CODE)
        control(stack, "/sandbox/refunds", {"outcome": "processing", "count": 1, "wallet": "alipay"})
        assert refunds.refund(merchant, order_id, amount, 1)["status"] == "PENDING"
        refund_no = out_refund_no(order_id, 1)
        assert control(stack, "/sandbox/refunds/finish", {"out_refund_no": refund_no, "status": "FAILED"})["ok"]
        assert money(stack, order_id) == ("PAID", 0, amount, [("payment", amount)])  # still held
        return order_id, refund_no

    # Alipay no longer lists it: sent again under the same number, and this time it goes through.
    retried, retried_no = failed_at_alipay(500)
    assert retried_no in sweep.run().booked
    assert money(stack, retried) == ("REFUNDED", 500, 0, [("payment", 500), (f"refund#{retried_no}", -500)])
    assert sandbox_refunds(stack, retried) == [("alipay", retried_no, 500, "SUCCESS")]

    # Sent again, and refused (the merchant's balance is short): released, the amount is free again.
    refused, refused_no = failed_at_alipay(300)
    control(stack, "/sandbox/refunds", {"outcome": "fail", "count": 1, "wallet": "alipay"})
    assert refused_no in sweep.run().released
    assert money(stack, refused) == ("PAID", 0, 0, [("payment", 300)])
    status = refunds.status(merchant, refused, 1)
    assert (status["status"], status["code"]) == ("FAILED", "ACQ.SELLER_BALANCE_NOT_ENOUGH")
    assert sandbox_refunds(stack, refused) == [("alipay", refused_no, 300, "FAILED")]
    assert refunds.refund(merchant, refused, 300, 2)["status"] == "REFUNDED"  # a new number refunds once


def test_a_late_payment_refund_is_booked_when_the_platform_confirms_it(stack):
    merchant = stack.direct.merchant_id
    order_id = scan_pay(stack, stack.direct, 880, ALIPAY_CODE)
    wechat, _ = stack.container.channels.for_merchant(merchant, "wechat")  # type: ignore[misc]
    # The same order paid again with WeChat (the consumer scanned both wallets): a late payment.
    paid = wechat.scan_pay(ScanPayRequest(order_id, 880, "午餐", SECOND_WECHAT_CODE))
    assert paid.trade_status is TradeStatus.PAID
    control(stack, "/sandbox/refunds", {"outcome": "processing", "count": 1})
    order = stack.container.orders.get(order_id).order
    booking = PaymentBooking(order_id, merchant, Wallet.WECHAT, wechat.name, paid.trade_no, 880, stack.clock.now())
    sweep = refund_sweep(stack.container, lambda line: None)
    refund_no = late_refund_no(order_id, Wallet.WECHAT, paid.trade_no)

    assert stack.container.booker.book(order, booking, wechat, "refund") == "LATE_REFUND_PENDING"
    assert refund_no in sweep.run().pending
    late_only = ("PAID", 0, 0, [(f"late#wechat#{paid.trade_no}", 880), ("payment", 880)])
    assert money(stack, order_id) == late_only
    assert stack.container.booker.book(order, booking, wechat, "refund") == "DUPLICATE"  # notification again

    assert control(stack, "/sandbox/refunds/finish", {"out_refund_no": refund_no, "status": "SUCCESS"})["ok"]
    assert refund_no in sweep.run().booked
    booked = ("PAID", 0, 0, [(f"late#wechat#{paid.trade_no}", 880), (f"lateref#wechat#{paid.trade_no}", -880),
                             ("payment", 880)])
    assert money(stack, order_id) == booked
    assert refund_no not in sweep.run().booked  # a re-run books nothing more
    stack.container.expiry.run()  # nor does the expiry job's retry of late refunds
    assert money(stack, order_id) == booked
    assert sandbox_refunds(stack, order_id) == [("wechat_v2", refund_no, 880, "SUCCESS")]
