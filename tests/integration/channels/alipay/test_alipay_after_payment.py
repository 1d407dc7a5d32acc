"""After a payment: close an unpaid trade, cancel (refunds a paid one), refund once per request number."""
from __future__ import annotations

from chalicelib.channels.base import ChannelState, RefundRequest, ScanPayRequest, TradeStatus

INSTANT = "251234567890125555"
ABANDON = "251234567890128888"


def _paid(channel, out_trade_no: str, amount_fen: int = 1000) -> str:
    result = channel.scan_pay(ScanPayRequest(out_trade_no, amount_fen, "午餐", INSTANT))
    assert result.trade_status is TradeStatus.PAID
    return result.trade_no


def _refund(channel, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int = 1000):
    return channel.refund(RefundRequest(out_trade_no=out_trade_no, out_refund_no=out_refund_no,
                                        total_fen=total_fen, refund_fen=refund_fen, reason="菜品售罄"))


def test_close_unpaid_trade(channel, order_no):
    out_trade_no = order_no()
    channel.scan_pay(ScanPayRequest(out_trade_no, 500, "午餐", ABANDON))
    closed = channel.close(out_trade_no)
    assert (closed.state, closed.trade_status) == (ChannelState.SUCCESS, TradeStatus.CLOSED)
    assert channel.query(out_trade_no).trade_status is TradeStatus.CLOSED


def test_cancel_refunds_a_paid_trade(channel, order_no):
    out_trade_no = order_no()
    trade_no = _paid(channel, out_trade_no)
    cancelled = channel.cancel(out_trade_no)
    assert (cancelled.state, cancelled.trade_status, cancelled.trade_no) == (
        ChannelState.SUCCESS, TradeStatus.REFUNDED, trade_no)
    assert channel.query(out_trade_no).trade_status is TradeStatus.REFUNDED
    assert channel.cancel(out_trade_no).trade_status is TradeStatus.REFUNDED  # a retried cancel answers the same


def test_cancel_of_an_order_alipay_never_saw_closes_it(channel, order_no):
    cancelled = channel.cancel(order_no())
    assert (cancelled.state, cancelled.trade_status) == (ChannelState.SUCCESS, TradeStatus.CLOSED)


def test_refund_in_parts_once_per_request_number(channel, sandbox, order_no):
    out_trade_no = order_no()
    trade_no = _paid(channel, out_trade_no)
    first = _refund(channel, out_trade_no, "R1", 300)
    assert (first.state, first.trade_status, first.trade_no, first.message) == (
        ChannelState.SUCCESS, TradeStatus.REFUNDED, trade_no, "fund_change=Y")
    retried = _refund(channel, out_trade_no, "R1", 300)  # e.g. after a timeout: no second refund
    assert (retried.state, retried.message) == (ChannelState.SUCCESS, "fund_change=N")
    assert channel.query(out_trade_no).trade_status is TradeStatus.PAID  # partly refunded: still TRADE_SUCCESS

    too_much = _refund(channel, out_trade_no, "R2", 701)
    assert (too_much.state, too_much.code) == (ChannelState.FAIL, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    assert _refund(channel, out_trade_no, "R2", 700).state is ChannelState.SUCCESS
    assert channel.query(out_trade_no).trade_status is TradeStatus.REFUNDED  # in full: TRADE_CLOSED
    [trade] = [t for t in sandbox.ctx.book.all() if t.out_trade_no == out_trade_no]
    assert [(r.out_refund_no, r.amount_fen) for r in trade.refunds] == [("R1", 300), ("R2", 700)]


def test_refund_of_an_unknown_order_fails(channel, order_no):
    refused = _refund(channel, order_no(), "R1", 100)
    assert (refused.state, refused.code) == (ChannelState.FAIL, "ACQ.TRADE_NOT_EXIST")


def test_query_unknown_order_is_not_found(channel, order_no):
    queried = channel.query(order_no())
    assert (queried.state, queried.trade_status) == (ChannelState.SUCCESS, TradeStatus.NOT_FOUND)
