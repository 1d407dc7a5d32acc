"""Each capability of the wechat_v3 channel through wechatpayv3 against the sandbox, in both
verification modes (platform certificate, WeChat Pay public key): `mode` parametrises every test."""
from __future__ import annotations

import json
import time
from datetime import datetime

from chalicelib.channels.base import (
    ChannelResult,
    ChannelState,
    HttpReply,
    NativeOrderRequest,
    PaymentNotice,
    RefundRequest,
    ScanPayRequest,
    TradeStatus,
)
from chalicelib.domain.clock import BEIJING
from sandbox import wechat_v3 as platform
from sandbox.notifier import Delivery

INSTANT = "134567890123451234"
PASSWORD = "134567890123450000"
NO_MONEY = "134567890123459999"
ABANDON = "134567890123458888"
ALIPAY_CODE = "284567890123451234"


def native(channel, out_trade_no: str, amount_fen: int = 1250, notify_url: str = "http://127.0.0.1:9/notify",
           expires_at: float | None = None) -> ChannelResult:
    return channel.create_native_qr(NativeOrderRequest(
        out_trade_no=out_trade_no, amount_fen=amount_fen, description="午餐", notify_url=notify_url,
        expires_at=expires_at or time.time() + 300,
    ))


def scan_pay(channel, out_trade_no: str, auth_code: str, amount_fen: int = 800) -> ChannelResult:
    return channel.scan_pay(ScanPayRequest(out_trade_no, amount_fen, "早餐", auth_code))


def sim_trade(sandbox, mchid: str, out_trade_no: str):
    return sandbox.ctx.book.get(platform.NAME, mchid, out_trade_no)


def settled_delivery(sandbox, url: str, timeout_s: float = 5.0) -> Delivery:
    """The one notification posted to `url`, once acknowledged (other tests' deliveries may never be)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = [d for d in list(sandbox.ctx.notifier.deliveries) if d.url == url]
        if found and found[0].acked:
            assert len(found) == 1
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no acknowledged notification to {url}")


def test_native_gives_a_code_url_and_sends_time_expire_in_beijing_time(channel, sandbox, mchid, order_no):
    out_trade_no, expires_at = order_no("N"), time.time() + 600
    result = native(channel, out_trade_no, expires_at=expires_at)
    assert result.state is ChannelState.SUCCESS and result.trade_status is TradeStatus.NOT_PAID
    assert result.qr is not None and result.qr.startswith("weixin://wxpay/bizpayurl?pr=")
    trade = sim_trade(sandbox, mchid, out_trade_no)
    assert trade.code_url == result.qr and trade.amount_fen == 1250 and trade.trade_type == "NATIVE"
    assert trade.extra["time_expire"] == datetime.fromtimestamp(int(expires_at), BEIJING).isoformat()
    assert trade.extra["time_expire"].endswith("+08:00") and trade.expires_at == int(expires_at)


def test_native_twice_with_the_same_order_gives_the_same_code_url(channel, order_no):
    out_trade_no = order_no("N")
    assert native(channel, out_trade_no).qr == native(channel, out_trade_no).qr


def test_native_paid_by_scanning_notifies_the_merchant_who_parses_and_acks(channel, sandbox, mchid, receiver,
                                                                            scan, order_no):
    out_trade_no = order_no("N")
    qr = native(channel, out_trade_no, amount_fen=1250, notify_url=receiver.url).qr
    status, paid = scan(qr)
    assert status == 200 and paid["ok"] is True
    delivery = settled_delivery(sandbox, receiver.url)
    trade = sim_trade(sandbox, mchid, out_trade_no)
    assert receiver.rejections == []
    assert receiver.notices == [PaymentNotice(
        out_trade_no=out_trade_no, trade_no=paid["trade_no"], amount_fen=1250, paid_at=float(int(trade.paid_at)),
        merchant_ref=mchid, paid=True,
    )]
    assert delivery.attempts == [(204, b"")]
    assert delivery.headers["Wechatpay-Serial"] == (
        sandbox.ctx.accounts["wechat_v3"]["platform"]["public_key_id"] if mchid.endswith("209")
        else sandbox.ctx.accounts["wechat_v3"]["platform"]["certificate_serial"])
    queried = channel.query(out_trade_no)
    assert (queried.state, queried.trade_status, queried.trade_no, queried.amount_fen) == (
        ChannelState.SUCCESS, TradeStatus.PAID, paid["trade_no"], 1250)


def test_a_nacked_notification_is_posted_again(channel, sandbox, receiver, scan, order_no):
    receiver.nack_first = 1
    qr = native(channel, order_no("N"), notify_url=receiver.url).qr
    scan(qr)
    delivery = settled_delivery(sandbox, receiver.url)
    assert [status for status, _ in delivery.attempts] == [500, 204]
    assert json.loads(delivery.attempts[0][1]) == {"code": "FAIL", "message": "try again later"}
    assert len(receiver.notices) == 1


def test_ack_and_nack_are_what_v3_expects(channel):
    assert channel.ack() == HttpReply(204)
    nack = channel.nack("bad signature")
    assert (nack.status, json.loads(nack.body)) == (500, {"code": "FAIL", "message": "bad signature"})
    assert nack.headers["Content-Type"].startswith("application/json")


def test_scan_pay_instant_is_paid_at_once(channel, order_no):
    out_trade_no = order_no("S")
    result = scan_pay(channel, out_trade_no, INSTANT, amount_fen=800)
    assert (result.state, result.trade_status, result.amount_fen) == (ChannelState.SUCCESS, TradeStatus.PAID, 800)
    assert result.trade_no and result.paid_at and abs(result.paid_at - time.time()) < 60


def test_scan_pay_with_password_is_unknown_until_a_query_finds_it_paid(channel, order_no):
    out_trade_no = order_no("S")
    first = scan_pay(channel, out_trade_no, PASSWORD)
    assert (first.state, first.trade_status, first.code) == (
        ChannelState.UNKNOWN, TradeStatus.USER_PAYING, "USERPAYING")
    statuses = [channel.query(out_trade_no).trade_status for _ in range(3)]
    assert statuses == [TradeStatus.USER_PAYING, TradeStatus.USER_PAYING, TradeStatus.PAID]
    assert channel.query(out_trade_no).amount_fen == 800


def test_scan_pay_without_money_fails(channel, order_no):
    result = scan_pay(channel, order_no("S"), NO_MONEY)
    assert (result.state, result.code) == (ChannelState.FAIL, "NOTENOUGH")


def test_scan_pay_with_another_wallets_code_fails(channel, order_no):
    result = scan_pay(channel, order_no("S"), ALIPAY_CODE)
    assert (result.state, result.code) == (ChannelState.FAIL, "AUTH_CODE_INVALID")


def test_abandoned_password_is_cancelled_by_reverse(channel, order_no):
    out_trade_no = order_no("S")
    assert scan_pay(channel, out_trade_no, ABANDON).trade_status is TradeStatus.USER_PAYING
    assert channel.query(out_trade_no).trade_status is TradeStatus.USER_PAYING
    cancelled = channel.cancel(out_trade_no)
    assert (cancelled.state, cancelled.trade_status) == (ChannelState.SUCCESS, TradeStatus.CLOSED)
    queried = channel.query(out_trade_no)
    assert (queried.state, queried.trade_status, queried.code) == (ChannelState.SUCCESS, TradeStatus.CLOSED, "REVOKED")


def test_cancelling_a_paid_code_payment_refunds_it(channel, sandbox, mchid, order_no):
    out_trade_no = order_no("S")
    assert scan_pay(channel, out_trade_no, INSTANT, amount_fen=650).ok
    assert channel.cancel(out_trade_no).state is ChannelState.SUCCESS
    assert channel.query(out_trade_no).trade_status is TradeStatus.CLOSED
    assert sim_trade(sandbox, mchid, out_trade_no).refunded_fen == 650


def test_close_unpaid_then_it_cannot_be_paid(channel, scan, order_no):
    out_trade_no = order_no("N")
    qr = native(channel, out_trade_no).qr
    closed = channel.close(out_trade_no)
    assert (closed.state, closed.trade_status) == (ChannelState.SUCCESS, TradeStatus.CLOSED)
    assert channel.query(out_trade_no).trade_status is TradeStatus.CLOSED
    status, answer = scan(qr)
    assert (status, answer["error"]) == (409, "NOT_PAYABLE")
    assert channel.close(out_trade_no).state is ChannelState.SUCCESS  # closing twice is harmless


def test_close_paid_fails_with_the_platforms_code(channel, scan, order_no):
    out_trade_no = order_no("N")
    scan(native(channel, out_trade_no).qr)
    closed = channel.close(out_trade_no)
    assert (closed.state, closed.code) == (ChannelState.FAIL, "ORDER_PAID")
    assert channel.query(out_trade_no).trade_status is TradeStatus.PAID


def test_refund_in_parts_once_per_out_refund_no(channel, order_no):
    out_trade_no = order_no("S")
    assert scan_pay(channel, out_trade_no, INSTANT, amount_fen=1000).ok
    first = channel.refund(RefundRequest(out_trade_no, out_trade_no + "R1", 1000, 300, "少找零"))
    assert (first.state, first.amount_fen, first.code) == (ChannelState.SUCCESS, 300, "PROCESSING")
    again = channel.refund(RefundRequest(out_trade_no, out_trade_no + "R1", 1000, 300, "少找零"))
    assert (again.state, again.trade_no) == (ChannelState.SUCCESS, first.trade_no)
    rest = channel.refund(RefundRequest(out_trade_no, out_trade_no + "R2", 1000, 700, "退餐"))
    assert rest.state is ChannelState.SUCCESS and rest.trade_no != first.trade_no
    too_much = channel.refund(RefundRequest(out_trade_no, out_trade_no + "R3", 1000, 1, "多退"))
    assert (too_much.state, too_much.code) == (ChannelState.FAIL, "INVALID_REQUEST")
    queried = channel.query(out_trade_no)
    assert (queried.trade_status, queried.amount_fen) == (TradeStatus.REFUNDED, 1000)


def test_refund_of_an_unknown_trade_fails(channel, order_no):
    result = channel.refund(RefundRequest(order_no("X"), order_no("R"), 100, 100, "x"))
    assert (result.state, result.code) == (ChannelState.FAIL, "RESOURCE_NOT_EXISTS")


def test_query_of_an_unknown_trade_is_not_found(channel, order_no):
    result = channel.query(order_no("X"))
    assert (result.state, result.trade_status, result.code) == (
        ChannelState.SUCCESS, TradeStatus.NOT_FOUND, "ORDER_NOT_EXIST")


def test_http_calls_per_operation(make_channel, calls, mode, mchid, order_no):
    """Construction: none. Each operation: one. Certificate mode downloads once per client, lazily;
    channels built again from the same settings share the client (a store_id of our own makes it new)."""
    fresh = {"store_id": order_no("STORE")}
    before = len(calls(mchid))
    channel = make_channel(mchid, **fresh)
    assert calls(mchid)[before:] == []
    out_trade_no = order_no("N")
    native(channel, out_trade_no)
    make_channel(mchid, **fresh).query(out_trade_no)
    make_channel(mchid, **fresh).close(out_trade_no)
    expected = ["POST /v3/pay/transactions/native"]
    if mode == "certificate":
        expected.append("GET /v3/certificates")
    expected += [f"GET /v3/pay/transactions/out-trade-no/{out_trade_no}",
                 f"POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close"]
    assert calls(mchid)[before:] == expected
