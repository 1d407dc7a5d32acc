"""Alipay's refund outcome is not always known at once: alipay.trade.refund's 10000 only says the call went
through; fund_change Y is money that moved now, N is a repeat or a refund Alipay has not finished, which
alipay.trade.fastpay.refund.query confirms with refund_status REFUND_SUCCESS. A refund Alipay no longer
lists (failed) is sent again under the same out_request_no, and may then be refused."""
from __future__ import annotations

from chalicelib.channels.base import ChannelState, RefundRequest, ScanPayRequest, TradeStatus

INSTANT = "251234567890125555"


def _paid(channel, out_trade_no: str, amount_fen: int = 1000) -> None:  # type: ignore[no-untyped-def]
    paid = channel.scan_pay(ScanPayRequest(out_trade_no, amount_fen, "午餐", INSTANT))
    assert paid.trade_status is TradeStatus.PAID


def _refund(channel, out_trade_no: str, out_refund_no: str, refund_fen: int):  # type: ignore[no-untyped-def]
    return channel.refund(RefundRequest(out_trade_no, out_refund_no, 1000, refund_fen, "菜品售罄"))


def _plan(control, outcome: str, wallet: str = "alipay") -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    return control("/sandbox/refunds", {"outcome": outcome, "count": 1, "wallet": wallet})


def _finish(control, out_refund_no: str, status: str) -> None:  # type: ignore[no-untyped-def]
    code, body = control("/sandbox/refunds/finish", {"out_refund_no": out_refund_no, "status": status})
    assert (code, body["ok"]) == (200, True)


def test_a_processing_refund_is_accepted_not_refunded_until_the_query_confirms_it(channel, control, order_no):
    out_trade_no = order_no()
    _paid(channel, out_trade_no)
    assert _plan(control, "processing")[0] == 200

    accepted = _refund(channel, out_trade_no, "RP1", 400)
    processing = channel.query_refund(out_trade_no, "RP1")

    assert (accepted.state, accepted.trade_status, accepted.message) == (ChannelState.SUCCESS, None, "fund_change=N")
    assert (processing.state, processing.trade_status, processing.code) == (
        ChannelState.UNKNOWN, None, "REFUND_NOT_CONFIRMED")
    repeated = _refund(channel, out_trade_no, "RP1", 400)  # a retry while it is processing: no second refund
    assert (repeated.state, repeated.trade_status) == (ChannelState.SUCCESS, None)

    _finish(control, "RP1", "SUCCESS")
    done = channel.query_refund(out_trade_no, "RP1")
    assert (done.state, done.trade_status, done.amount_fen, done.code) == (
        ChannelState.SUCCESS, TradeStatus.REFUNDED, 400, "REFUND_SUCCESS")
    after = _refund(channel, out_trade_no, "RP1", 400)  # fund_change N again: confirmed by the query, not here
    assert (after.state, after.trade_status, after.message) == (ChannelState.SUCCESS, None, "fund_change=N")


def test_a_failed_refund_is_not_listed_and_may_be_sent_again_or_refused(channel, control, order_no):
    out_trade_no = order_no()
    _paid(channel, out_trade_no)
    _plan(control, "processing")
    assert _refund(channel, out_trade_no, "RF1", 1000).trade_status is None
    _finish(control, "RF1", "FAILED")

    gone = channel.query_refund(out_trade_no, "RF1")
    assert (gone.state, gone.trade_status) == (ChannelState.FAIL, TradeStatus.NOT_FOUND)

    _plan(control, "fail")
    refused = _refund(channel, out_trade_no, "RF1", 1000)  # the same number again: refused this time
    assert (refused.state, refused.code) == (ChannelState.FAIL, "ACQ.SELLER_BALANCE_NOT_ENOUGH")
    assert channel.query_refund(out_trade_no, "RF1").trade_status is TradeStatus.NOT_FOUND

    again = _refund(channel, out_trade_no, "RF1", 1000)  # and once more: it goes through, money moves now
    assert (again.state, again.trade_status, again.message) == (ChannelState.SUCCESS, TradeStatus.REFUNDED,
                                                                "fund_change=Y")
    assert channel.query_refund(out_trade_no, "RF1").trade_status is TradeStatus.REFUNDED
    assert channel.query(out_trade_no).trade_status is TradeStatus.REFUNDED  # refunded in full: TRADE_CLOSED


def test_refund_plans_name_a_known_wallet_and_outcome(control):
    assert _plan(control, "processing", wallet="unionpay")[0] == 400
    assert _plan(control, "sometimes")[0] == 400
