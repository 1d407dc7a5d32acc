"""Payment code (alipay.trade.pay, scene bar_code): the consumer behaviours of sandbox/trades.py."""
from __future__ import annotations

import time

from chalicelib.channels.base import ChannelState, ScanPayRequest, TradeStatus

INSTANT = "281234567890121234"
PASSWORD = "281234567890120000"
NO_MONEY = "281234567890129999"
ABANDON = "281234567890128888"
WECHAT_CODE = "131234567890121234"


def _pay(channel, out_trade_no: str, auth_code: str, amount_fen: int = 800):
    return channel.scan_pay(ScanPayRequest(out_trade_no=out_trade_no, amount_fen=amount_fen,
                                           description="早餐", auth_code=auth_code))


def test_instant_payment(channel, order_no):
    paid = _pay(channel, order_no(), INSTANT, 801)
    assert (paid.state, paid.trade_status, paid.amount_fen) == (ChannelState.SUCCESS, TradeStatus.PAID, 801)
    assert paid.trade_no and abs(paid.paid_at - time.time()) < 60


def test_password_is_unknown_then_query_finds_it_paid(channel, order_no):
    out_trade_no = order_no()
    waiting = _pay(channel, out_trade_no, PASSWORD)
    assert (waiting.state, waiting.trade_status, waiting.code) == (
        ChannelState.UNKNOWN, TradeStatus.USER_PAYING, "10003")
    assert [channel.query(out_trade_no).trade_status for _ in range(2)] == [TradeStatus.NOT_PAID] * 2
    paid = channel.query(out_trade_no)
    assert (paid.state, paid.trade_status, paid.amount_fen) == (ChannelState.SUCCESS, TradeStatus.PAID, 800)
    assert paid.trade_no == waiting.trade_no


def test_no_money_fails(channel, order_no):
    failed = _pay(channel, order_no(), NO_MONEY)
    assert (failed.state, failed.code) == (ChannelState.FAIL, "ACQ.BUYER_BALANCE_NOT_ENOUGH")


def test_abandoned_password_stays_waiting_until_cancelled(channel, order_no):
    out_trade_no = order_no()
    assert _pay(channel, out_trade_no, ABANDON).trade_status is TradeStatus.USER_PAYING
    assert {channel.query(out_trade_no).trade_status for _ in range(4)} == {TradeStatus.NOT_PAID}
    cancelled = channel.cancel(out_trade_no)
    assert (cancelled.state, cancelled.trade_status) == (ChannelState.SUCCESS, TradeStatus.CLOSED)
    assert channel.query(out_trade_no).trade_status is TradeStatus.CLOSED


def test_repeating_the_pay_of_a_paid_order_is_unknown_not_fail(channel, order_no):
    """ACQ.TRADE_HAS_SUCCESS: the money is there; the caller queries rather than fails the order."""
    out_trade_no = order_no()
    _pay(channel, out_trade_no, INSTANT)
    again = _pay(channel, out_trade_no, INSTANT)
    assert (again.state, again.code) == (ChannelState.UNKNOWN, "ACQ.TRADE_HAS_SUCCESS")


def test_a_wechat_payment_code_is_refused(channel, order_no):
    refused = _pay(channel, order_no(), WECHAT_CODE)
    assert (refused.state, refused.code) == (ChannelState.FAIL, "ACQ.PAYMENT_AUTH_CODE_INVALID")
