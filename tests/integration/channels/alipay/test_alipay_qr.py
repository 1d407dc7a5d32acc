"""Native QR (alipay.trade.precreate): create, scan and pay, notification, query, close, cancel."""
from __future__ import annotations

import time

from chalicelib.channels.base import ChannelState, NativeOrderRequest, TradeStatus
from sandbox.notifier import ALIPAY_SCHEDULE


def _order(out_trade_no: str, notify_url: str, amount_fen: int = 1250, ttl_s: float = 600) -> NativeOrderRequest:
    return NativeOrderRequest(out_trade_no=out_trade_no, amount_fen=amount_fen, description="午餐 套餐A",
                              notify_url=notify_url, expires_at=time.time() + ttl_s)


def test_precreate_scan_pay_notify_and_query(channel, scan, receiver, order_no, direct_settings):
    out_trade_no = order_no()
    created = channel.create_native_qr(_order(out_trade_no, receiver.url))
    assert created.state is ChannelState.SUCCESS
    assert created.qr.startswith("https://qr.alipay.com/")

    status, paid = scan(created.qr)
    assert status == 200 and paid["ok"] and paid["amount_fen"] == 1250

    [(headers, body)] = receiver.wait_for(1)
    assert headers["content-type"].startswith("application/x-www-form-urlencoded")
    notice = channel.parse_notification(headers, body)
    assert notice.out_trade_no == out_trade_no
    assert notice.trade_no == paid["trade_no"]
    assert notice.amount_fen == 1250
    assert notice.merchant_ref == direct_settings["seller_id"]
    assert notice.paid is True
    assert abs(notice.paid_at - time.time()) < 60

    queried = channel.query(out_trade_no)
    assert (queried.state, queried.trade_status) == (ChannelState.SUCCESS, TradeStatus.PAID)
    assert queried.trade_no == paid["trade_no"] and queried.amount_fen == 1250
    assert int(queried.paid_at) == int(notice.paid_at)


def test_precreate_is_repeatable_with_the_same_qr(channel, receiver, order_no):
    out_trade_no = order_no()
    first = channel.create_native_qr(_order(out_trade_no, receiver.url))
    again = channel.create_native_qr(_order(out_trade_no, receiver.url))
    assert again.state is ChannelState.SUCCESS and again.qr == first.qr


def test_precreate_same_order_other_amount_fails(channel, receiver, order_no):
    out_trade_no = order_no()
    channel.create_native_qr(_order(out_trade_no, receiver.url))
    changed = channel.create_native_qr(_order(out_trade_no, receiver.url, amount_fen=999))
    assert (changed.state, changed.code) == (ChannelState.FAIL, "ACQ.CONTEXT_INCONSISTENT")


def test_a_paid_qr_cannot_be_paid_twice(channel, scan, receiver, order_no):
    created = channel.create_native_qr(_order(order_no(), receiver.url))
    assert scan(created.qr)[0] == 200
    status, answer = scan(created.qr)
    assert (status, answer["error"]) == (409, "NOT_PAYABLE")


def test_wechat_cannot_pay_an_alipay_qr(channel, scan, receiver, order_no):
    created = channel.create_native_qr(_order(order_no(), receiver.url))
    status, answer = scan(created.qr, wallet="wechat")
    assert (status, answer["error"]) == (409, "WRONG_WALLET")


def test_unscanned_qr_is_not_a_trade_yet(channel, receiver, order_no):
    """Alipay creates the trade when it is scanned: query and close find nothing before."""
    out_trade_no = order_no()
    channel.create_native_qr(_order(out_trade_no, receiver.url))
    queried = channel.query(out_trade_no)
    assert (queried.state, queried.trade_status, queried.code) == (
        ChannelState.SUCCESS, TradeStatus.NOT_FOUND, "ACQ.TRADE_NOT_EXIST")


def test_close_unscanned_qr_leaves_it_payable_until_expiry(channel, scan, receiver, order_no):
    out_trade_no = order_no()
    created = channel.create_native_qr(_order(out_trade_no, receiver.url))
    closed = channel.close(out_trade_no)
    assert (closed.state, closed.trade_status, closed.code) == (
        ChannelState.SUCCESS, TradeStatus.NOT_FOUND, "ACQ.TRADE_NOT_EXIST")
    assert scan(created.qr)[0] == 200  # as on Alipay: only time_expire or cancel stops it


def test_cancel_voids_an_unscanned_qr(channel, scan, receiver, order_no):
    out_trade_no = order_no()
    created = channel.create_native_qr(_order(out_trade_no, receiver.url))
    cancelled = channel.cancel(out_trade_no)
    assert (cancelled.state, cancelled.trade_status) == (ChannelState.SUCCESS, TradeStatus.CLOSED)
    status, answer = scan(created.qr)
    assert (status, answer["error"]) == (409, "NOT_PAYABLE")


def test_expired_qr_cannot_be_paid(channel, sandbox, scan, receiver, order_no):
    created = channel.create_native_qr(_order(order_no(), receiver.url, ttl_s=120))
    real_clock = sandbox.ctx.clock
    sandbox.ctx.clock = lambda: real_clock() + 121  # past time_expire, which the sandbox read in Beijing time
    try:
        status, answer = scan(created.qr)
    finally:
        sandbox.ctx.clock = real_clock
    assert (status, answer["error"]) == (409, "NOT_PAYABLE")


def test_close_paid_trade_fails_with_the_code(channel, scan, receiver, order_no):
    out_trade_no = order_no()
    created = channel.create_native_qr(_order(out_trade_no, receiver.url))
    scan(created.qr)
    closed = channel.close(out_trade_no)
    assert (closed.state, closed.code) == (ChannelState.FAIL, "ACQ.TRADE_STATUS_ERROR")
    assert channel.query(out_trade_no).trade_status is TradeStatus.PAID


def test_notification_is_retried_until_the_body_is_exactly_success(channel, sandbox, scan, receiver, order_no):
    receiver.answers = [b"failure", b"success\n"]
    out_trade_no = order_no()
    created = channel.create_native_qr(_order(out_trade_no, receiver.url))
    scan(created.qr)
    posts = receiver.wait_for(3)
    assert posts[0][1] == posts[1][1] == posts[2][1]  # the same signed body every time
    delivery = next(d for d in sandbox.ctx.notifier.deliveries if d.label == f"alipay {out_trade_no}")
    deadline = time.time() + 5
    while not delivery.acked and time.time() < deadline:  # the notifier notes the answer after we sent it
        time.sleep(0.01)
    assert delivery.schedule == ALIPAY_SCHEDULE
    assert [body for _, body in delivery.attempts] == [b"failure", b"success\n", b"success"]
    assert delivery.acked


def test_ack_and_nack_are_what_alipay_reads(channel):
    ack, nack = channel.ack(), channel.nack("bad signature")
    assert (ack.status, ack.body, ack.headers["Content-Type"]) == (200, "success", "text/plain")
    assert (nack.status, nack.body) == (200, "failure")
