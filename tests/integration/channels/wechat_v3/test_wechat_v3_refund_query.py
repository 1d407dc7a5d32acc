"""query_refund: a v3 refund is accepted PROCESSING, and the query tells when the money went back or failed."""
from __future__ import annotations

from chalicelib.channels.base import ChannelState, RefundRequest, ScanPayRequest, TradeStatus

INSTANT = "134567890123451234"


def test_a_refund_is_processing_until_the_platform_finishes_it(channel, sandbox, order_no):
    out_trade_no = order_no("Q")
    assert channel.scan_pay(ScanPayRequest(out_trade_no, 900, "午餐", INSTANT)).ok
    sandbox.ctx.book.plan_refunds("processing", 2)
    done, failed = out_trade_no + "R1", out_trade_no + "R2"
    assert channel.refund(RefundRequest(out_trade_no, done, 900, 500, "退餐")).trade_status is not TradeStatus.REFUNDED
    assert channel.refund(RefundRequest(out_trade_no, failed, 900, 400, "退餐")).state is ChannelState.SUCCESS

    processing = channel.query_refund(out_trade_no, done)
    sandbox.ctx.book.finish_refund(done, "SUCCESS")
    sandbox.ctx.book.finish_refund(failed, "FAILED")
    finished, abnormal = channel.query_refund(out_trade_no, done), channel.query_refund(out_trade_no, failed)
    never = channel.query_refund(out_trade_no, out_trade_no + "R9")

    assert (processing.state, processing.code) == (ChannelState.UNKNOWN, "PROCESSING")
    assert (finished.state, finished.trade_status, finished.amount_fen) == (ChannelState.SUCCESS,
                                                                             TradeStatus.REFUNDED, 500)
    assert (abnormal.state, abnormal.code) == (ChannelState.FAIL, "ABNORMAL")
    assert (never.state, never.trade_status) == (ChannelState.FAIL, TradeStatus.NOT_FOUND)
