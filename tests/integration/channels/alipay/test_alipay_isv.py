"""ISV mode (scheme 2): the bank's app calls with the merchant's app_auth_token."""
from __future__ import annotations

import time

import pytest

from chalicelib.channels.alipay import build
from chalicelib.channels.base import ChannelState, NativeOrderRequest, NotificationRejected, ScanPayRequest, TradeStatus
from sandbox.alipay import BANK_APP_ID, BANK_SELLER_ID, ISV_MERCHANT_APP_ID, ISV_SELLER_ID


def test_isv_qr_is_paid_into_the_merchants_account(isv_channel, channel, sandbox, scan, receiver, order_no):
    out_trade_no = order_no()
    created = isv_channel.create_native_qr(NativeOrderRequest(
        out_trade_no, 2000, "晚餐", receiver.url, time.time() + 600))
    assert created.state is ChannelState.SUCCESS
    assert scan(created.qr)[0] == 200

    [(headers, body)] = receiver.wait_for(1)
    notice = isv_channel.parse_notification(headers, body)
    assert (notice.out_trade_no, notice.amount_fen, notice.merchant_ref, notice.paid) == (
        out_trade_no, 2000, ISV_SELLER_ID, True)
    fields = dict(pair.split("=", 1) for pair in body.decode().split("&"))
    assert (fields["app_id"], fields["auth_app_id"], fields["seller_id"]) == (
        BANK_APP_ID, ISV_MERCHANT_APP_ID, ISV_SELLER_ID)

    [trade] = [t for t in sandbox.ctx.book.all() if t.out_trade_no == out_trade_no]
    assert trade.merchant_key == f"{BANK_APP_ID}:{ISV_SELLER_ID}"
    assert isv_channel.query(out_trade_no).trade_status is TradeStatus.PAID
    # The same order number in the merchant's direct account is another trade.
    assert channel.query(out_trade_no).trade_status is TradeStatus.NOT_FOUND


def test_isv_notification_is_not_the_banks_own_account(isv_settings, gateway, isv_channel, scan, receiver, order_no):
    """Signed for the bank's app but for another seller: the merchant check rejects it."""
    created = isv_channel.create_native_qr(NativeOrderRequest(order_no(), 100, "晚餐", receiver.url, time.time() + 600))
    scan(created.qr)
    [(headers, body)] = receiver.wait_for(1)
    banks_own = build({**isv_settings, "seller_id": BANK_SELLER_ID, "app_auth_token": ""}, gateway=gateway)
    with pytest.raises(NotificationRejected, match="seller_id"):
        banks_own.parse_notification(headers, body)


def test_isv_scan_pay(isv_channel, order_no):
    paid = isv_channel.scan_pay(ScanPayRequest(order_no(), 350, "早餐", "301234567890124321"))
    assert (paid.state, paid.trade_status, paid.amount_fen) == (ChannelState.SUCCESS, TradeStatus.PAID, 350)


def test_a_token_not_granted_to_this_app_is_refused(isv_settings, gateway, order_no):
    forged = build({**isv_settings, "app_auth_token": "202601BBnot-granted"}, gateway=gateway)
    result = forged.query(order_no())
    assert (result.state, result.code) == (ChannelState.FAIL, "aop.invalid-app-auth-token")
