"""What goes wrong between the channel and the platform is UNKNOWN, never FAIL (5xx, timeouts,
answers that cannot be verified); refusals the platform states plainly are FAIL."""
from __future__ import annotations

import time

import pytest

from chalicelib.channels import wechat_v3 as channel_module
from chalicelib.channels.base import ChannelState, NativeOrderRequest, RefundRequest, ScanPayRequest, TradeStatus
from sandbox import wechat_v3 as platform
from sandbox.keys import rsa_keypair_pem

from wechat_v3_support import MCHID_CERT, MCHID_PUBKEY, free_port

NATIVE = "/wxpay/v3/pay/transactions/native"
CODEPAY = "/wxpay/v3/pay/transactions/codepay"


def native_request(out_trade_no: str) -> NativeOrderRequest:
    return NativeOrderRequest(out_trade_no, 990, "午餐", "http://127.0.0.1:9/notify", time.time() + 300)


def test_native_5xx_is_unknown_and_a_retry_succeeds(channel, fault, order_no):
    out_trade_no = order_no("N")
    fault(NATIVE, "error")
    result = channel.create_native_qr(native_request(out_trade_no))
    assert result.state is ChannelState.UNKNOWN and "502" in result.message
    assert channel.create_native_qr(native_request(out_trade_no)).ok


def test_query_timeout_is_unknown(make_channel, mchid, fault, order_no):
    channel = make_channel(mchid, timeout_s=0.3)
    out_trade_no = order_no("N")
    assert channel.create_native_qr(native_request(out_trade_no)).ok
    fault(f"/wxpay/v3/pay/transactions/out-trade-no/{out_trade_no}", "timeout")
    result = channel.query(out_trade_no)
    assert result.state is ChannelState.UNKNOWN and "Timeout" in result.message
    assert channel.query(out_trade_no).trade_status is TradeStatus.NOT_PAID


def test_scan_pay_5xx_is_unknown_then_query_and_cancel_settle_it(channel, fault, order_no):
    out_trade_no = order_no("S")
    fault(CODEPAY, "error")
    result = channel.scan_pay(ScanPayRequest(out_trade_no, 500, "早餐", "134567890123451234"))
    assert result.state is ChannelState.UNKNOWN
    assert channel.query(out_trade_no).trade_status is TradeStatus.NOT_FOUND
    cancelled = channel.cancel(out_trade_no)  # nothing to reverse: the platform says so plainly
    assert (cancelled.state, cancelled.code) == (ChannelState.FAIL, "ORDER_NOT_EXIST")


def test_scan_pay_timeout_is_unknown(make_channel, mchid, fault, order_no):
    channel = make_channel(mchid, timeout_s=0.3)
    fault(CODEPAY, "timeout")
    result = channel.scan_pay(ScanPayRequest(order_no("S"), 500, "早餐", "134567890123451234"))
    assert result.state is ChannelState.UNKNOWN


def test_close_cancel_and_refund_5xx_are_unknown(channel, fault, order_no):
    out_trade_no = order_no("S")
    assert channel.scan_pay(ScanPayRequest(out_trade_no, 500, "早餐", "134567890123451234")).ok
    fault(f"/wxpay/v3/pay/transactions/out-trade-no/{out_trade_no}/close", "error")
    assert channel.close(out_trade_no).state is ChannelState.UNKNOWN
    fault(f"/wxpay/v3/pay/transactions/out-trade-no/{out_trade_no}/reverse", "error")
    assert channel.cancel(out_trade_no).state is ChannelState.UNKNOWN
    fault("/wxpay/v3/refund/domestic/refunds", "error")
    refund = RefundRequest(out_trade_no, out_trade_no + "R", 500, 200, "x")
    assert channel.refund(refund).state is ChannelState.UNKNOWN
    assert channel.refund(refund).ok  # the retry with the same out_refund_no refunds once


def test_certificate_download_failure_makes_the_answer_unknown(make_channel, fault, calls, order_no):
    channel = make_channel(MCHID_CERT, store_id=order_no("STORE"))  # a client of its own: no certificates yet
    fault("/wxpay/v3/certificates", "error")
    out_trade_no = order_no("N")
    first = channel.create_native_qr(native_request(out_trade_no))
    assert first.state is ChannelState.UNKNOWN  # the order exists, but the answer could not be verified
    again = channel.create_native_qr(native_request(out_trade_no))
    assert again.ok and again.qr


def test_answers_that_cannot_be_verified_are_unknown(make_channel, mode, mchid, order_no):
    """Public key: a key that is not the platform's. Certificate: a wrong APIv3 key, so the downloaded
    certificate cannot be decrypted. Either way the order is made, but the answer is not believed."""
    if mode == "public_key":
        _, stranger = rsa_keypair_pem()
        channel = make_channel(mchid, public_key=stranger)
    else:
        channel = make_channel(mchid, apiv3_key="0" * 32)
    result = channel.create_native_qr(native_request(order_no("N")))
    assert result.state is ChannelState.UNKNOWN and "failed to verify the signature" in result.message


def test_requests_signed_with_the_wrong_merchant_key_are_refused(make_channel, mchid, order_no):
    wrong_private, _ = rsa_keypair_pem()
    channel = make_channel(mchid, merchant_private_key=wrong_private)
    result = channel.create_native_qr(native_request(order_no("N")))
    assert (result.state, result.code) == (ChannelState.FAIL, "SIGN_ERROR")
    assert channel.query(order_no("N")).state is ChannelState.UNKNOWN  # a refused query tells nothing


def test_construction_makes_no_call_even_in_certificate_mode(section):
    nowhere = f"http://127.0.0.1:{free_port()}"
    channel = channel_module.build(platform.channel_settings(section, MCHID_CERT), gateway=nowhere, timeout_s=0.5)
    result = channel.query("ANY")
    assert result.state is ChannelState.UNKNOWN and "Connection" in result.message


def test_settings_are_checked(section):
    settings = platform.channel_settings(section, MCHID_PUBKEY)
    with pytest.raises(ValueError, match="public_key"):
        channel_module.build({**settings, "public_key_id": ""})
    with pytest.raises(ValueError, match="apiv3_key"):
        channel_module.build({**settings, "apiv3_key": ""})


def test_sdk_glue_mirrors_wechatpay_init(section):
    """_Client stands in for WeChatPay.__init__ (2.0.4): it must set exactly the attributes the SDK sets."""
    from wechatpayv3 import WeChatPay, WeChatPayType
    settings = platform.channel_settings(section, MCHID_PUBKEY)
    genuine = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE, mchid=settings["mchid"], private_key=settings["merchant_private_key"],
        cert_serial_no=settings["merchant_cert_serial"], appid=settings["appid"], apiv3_key=settings["apiv3_key"],
        public_key=settings["public_key"], public_key_id=settings["public_key_id"],
    )
    ours = channel_module.build(settings)._client
    assert sorted(vars(ours)) == sorted(vars(genuine))
    assert sorted(vars(ours._core)) == sorted(vars(genuine._core))
    assert ours._core._gate_way == genuine._core._gate_way == "https://api.mch.weixin.qq.com"
