"""QR (NATIVE) orders: create, pay by scanning, the notification, query, close, expiry."""
from __future__ import annotations

import time

from chalicelib.channels.base import ChannelState, TradeStatus
from sandbox.notifier import Delivery
from sandbox.wechat_v2 import from_xml

from wechat_v2_support import (
    BANK_MCH_ID, DIRECT_APPID, DIRECT_MCH_ID, SUB_APPID, SUB_MCH_ID, UNREGISTERED_SUB_MCH_ID, post_json,
)


def test_native_qr_paid_by_scan_and_notified(channel, native_order, scan, receiver_for, sandbox):
    receiver = receiver_for(channel)
    order = native_order(receiver.url, amount_fen=1250)

    created = channel.create_native_qr(order)
    assert created.state is ChannelState.SUCCESS
    assert created.qr.startswith("weixin://wxpay/bizpayurl?pr=")

    paid = scan(created.qr)
    [received] = receiver.wait_for(1)

    assert received.rejected is None
    notice = received.notice
    assert (notice.out_trade_no, notice.amount_fen, notice.merchant_ref, notice.paid) == (
        order.out_trade_no, 1250, DIRECT_MCH_ID, True)
    assert notice.trade_no == paid["trade_no"]
    assert abs(notice.paid_at - time.time()) < 60  # time_end has whole seconds; a loaded CI may lag
    delivery = _delivery(sandbox, order.out_trade_no)
    assert _eventually(lambda: delivery.acked)  # our XML SUCCESS answer stopped the retries
    assert len(delivery.attempts) == 1
    fields = from_xml(received.body)
    assert "sign_type" not in fields and fields["appid"] == DIRECT_APPID and fields["trade_type"] == "NATIVE"

    queried = channel.query(order.out_trade_no)
    assert (queried.state, queried.trade_status, queried.trade_no, queried.amount_fen) == (
        ChannelState.SUCCESS, TradeStatus.PAID, paid["trade_no"], 1250)


def test_hmac_sha256_merchant_gets_hmac_signed_notification(make_channel, native_order, scan, receiver_for):
    channel = make_channel(sign_type="HMAC-SHA256")
    receiver = receiver_for(channel)
    created = channel.create_native_qr(native_order(receiver.url, amount_fen=1))
    assert created.ok  # the sandbox verified our HMAC-SHA256 request and we verified its answer

    scan(created.qr)
    [received] = receiver.wait_for(1)

    assert received.rejected is None and received.notice.amount_fen == 1
    assert from_xml(received.body)["sign_type"] == "HMAC-SHA256"
    assert channel.query(received.notice.out_trade_no).trade_status is TradeStatus.PAID


def test_notification_that_we_nack_is_retried(make_channel, channel, native_order, scan, receiver_for, sandbox):
    wrong_key = make_channel(api_key="A" * 32)  # a misconfigured merchant cannot verify: it nacks
    receiver = receiver_for(wrong_key)
    order = native_order(receiver.url)
    scan(channel.create_native_qr(order).qr)

    received = receiver.wait_for(2)  # first attempt, then the scaled-down 15 s retry

    assert [r.rejected for r in received[:2]] == ["signature does not verify"] * 2
    delivery = _delivery(sandbox, order.out_trade_no)
    assert not delivery.acked and b"FAIL" in delivery.attempts[0][1]


def test_service_provider_mode_with_sub_mch_id(bank_channel, native_order, scan, receiver_for):
    receiver = receiver_for(bank_channel)
    order = native_order(receiver.url, amount_fen=990)
    created = bank_channel.create_native_qr(order)
    assert created.ok

    scan(created.qr)
    [received] = receiver.wait_for(1)

    assert received.rejected is None
    assert (received.notice.merchant_ref, received.notice.amount_fen) == (BANK_MCH_ID, 990)
    fields = from_xml(received.body)
    assert (fields["sub_mch_id"], fields["sub_appid"]) == (SUB_MCH_ID, SUB_APPID)
    assert "sub_openid" in fields
    assert bank_channel.query(order.out_trade_no).trade_status is TradeStatus.PAID


def test_service_provider_notification_for_another_sub_merchant_is_rejected(
        make_channel, bank_channel, native_order, scan, receiver_for):
    other_sub_merchant = make_channel(BANK_MCH_ID, sub_mch_id="1900000288")
    receiver = receiver_for(other_sub_merchant)
    created = bank_channel.create_native_qr(native_order(receiver.url))
    scan(created.qr)

    received = receiver.wait_for(1)

    assert received[0].rejected == "sub_mch_id is not this merchant's"


def test_unregistered_sub_mch_id_is_refused(make_channel, native_order):
    stranger = make_channel(BANK_MCH_ID, sub_mch_id=UNREGISTERED_SUB_MCH_ID)

    result = stranger.create_native_qr(native_order())

    assert (result.state, result.code) == (ChannelState.FAIL, "INVALID_REQUEST")


def test_bank_without_sub_mch_id_is_refused(make_channel, native_order):
    result = make_channel(BANK_MCH_ID).create_native_qr(native_order())

    assert (result.state, result.code) == (ChannelState.FAIL, "PARAM_ERROR")


def test_close_unpaid_order(channel, native_order, scan, sandbox):
    order = native_order()
    created = channel.create_native_qr(order)

    closed = channel.close(order.out_trade_no)

    assert closed.state is ChannelState.SUCCESS
    assert channel.query(order.out_trade_no).trade_status is TradeStatus.CLOSED
    again = channel.close(order.out_trade_no)
    assert (again.state, again.code) == (ChannelState.SUCCESS, "ORDERCLOSED")
    status, _ = _scan_status(sandbox, created.qr)
    assert status == 409  # a closed QR cannot be paid


def test_close_paid_order_fails_with_orderpaid(channel, native_order, scan):
    order = native_order()
    scan(channel.create_native_qr(order).qr)

    closed = channel.close(order.out_trade_no)

    assert (closed.state, closed.code) == (ChannelState.FAIL, "ORDERPAID")


def test_create_same_order_again_gives_same_qr_until_paid(channel, native_order, scan):
    order = native_order()
    first = channel.create_native_qr(order)
    assert channel.create_native_qr(order).qr == first.qr

    scan(first.qr)
    again = channel.create_native_qr(order)

    assert (again.state, again.code) == (ChannelState.FAIL, "ORDERPAID")


def test_query_unknown_order_is_not_found(channel, new_order_id):
    result = channel.query(new_order_id())

    assert (result.state, result.trade_status, result.code) == (
        ChannelState.SUCCESS, TradeStatus.NOT_FOUND, "ORDERNOTEXIST")


def test_close_unknown_order_fails(channel, new_order_id):
    result = channel.close(new_order_id())

    assert (result.state, result.code) == (ChannelState.FAIL, "ORDERNOTEXIST")


def test_order_expires_at_time_expire(channel, native_order, sandbox):
    order = native_order(expires_in_s=1.2)  # time_expire has whole seconds: at most 1.2 s away
    created = channel.create_native_qr(order)
    assert channel.query(order.out_trade_no).trade_status is TradeStatus.NOT_PAID

    time.sleep(1.3)

    assert channel.query(order.out_trade_no).trade_status is TradeStatus.CLOSED
    assert _scan_status(sandbox, created.qr)[0] == 409


def test_time_expire_is_sent_in_beijing_time(channel, native_order, sandbox):
    order = native_order(expires_in_s=3600)

    channel.create_native_qr(order)

    trade = sandbox.ctx.book.get("wechat_v2", DIRECT_MCH_ID, order.out_trade_no)
    assert abs(trade.expires_at - order.expires_at) < 1  # read back as Beijing time by the sandbox


def _delivery(sandbox, out_trade_no: str) -> Delivery:
    return next(d for d in sandbox.ctx.notifier.deliveries if d.label == f"wechat_v2 {out_trade_no}")


def _eventually(condition, timeout_s: float = 2.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(0.01)
    return True


def _scan_status(sandbox, qr: str) -> tuple[int, dict]:
    return post_json(f"{sandbox.ctx.base_url}/sandbox/scan", {"qr": qr, "wallet": "wechat"})
