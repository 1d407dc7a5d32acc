"""Answers we cannot trust are UNKNOWN, never FAIL; signed refusals at the gateway are FAIL."""
from __future__ import annotations

import time

import pytest

from chalicelib.channels.alipay import build
from chalicelib.channels.base import (
    ChannelState,
    NativeOrderRequest,
    RefundRequest,
    ScanPayRequest,
    TradeStatus,
)
from sandbox.keys import rsa_keypair_pem

CAPABILITIES = {
    "create_native_qr": lambda ch, no: ch.create_native_qr(
        NativeOrderRequest(no, 100, "午餐", "http://127.0.0.1:9/notify", time.time() + 600)),
    "scan_pay": lambda ch, no: ch.scan_pay(ScanPayRequest(no, 100, "午餐", "281234567890121234")),
    "query": lambda ch, no: ch.query(no),
    "close": lambda ch, no: ch.close(no),
    "cancel": lambda ch, no: ch.cancel(no),
    "refund": lambda ch, no: ch.refund(RefundRequest(no, "R1", 100, 100, "")),
}


@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
def test_a_502_is_unknown(channel, fault, order_no, capability):
    fault("error")
    result = CAPABILITIES[capability](channel, order_no())
    assert (result.state, result.trade_status, result.code) == (ChannelState.UNKNOWN, TradeStatus.UNKNOWN, "NO_ANSWER")


@pytest.mark.parametrize("capability", ["scan_pay", "refund"])
def test_a_timeout_is_unknown(direct_settings, gateway, fault, order_no, capability):
    impatient = build(direct_settings, gateway=gateway, timeout_s=0.3)
    fault("timeout")
    started = time.monotonic()
    result = CAPABILITIES[capability](impatient, order_no())
    assert (result.state, result.code) == (ChannelState.UNKNOWN, "NO_ANSWER")
    assert time.monotonic() - started < 0.9  # the client gave up; it did not wait for the late answer


def test_a_scan_pay_that_timed_out_is_found_by_query(direct_settings, gateway, channel, fault, order_no):
    """After an UNKNOWN the caller queries; here the hung request never reached the trade book."""
    out_trade_no = order_no()
    fault("timeout")
    assert CAPABILITIES["scan_pay"](build(direct_settings, gateway=gateway, timeout_s=0.3), out_trade_no).state \
        is ChannelState.UNKNOWN
    assert channel.query(out_trade_no).trade_status is TradeStatus.NOT_FOUND


def test_an_answer_that_is_not_json_is_unknown(direct_settings, receiver, order_no):
    odd = build(direct_settings, gateway=receiver.base_url, timeout_s=2)  # answers 200 "success"
    result = odd.query(order_no())
    assert (result.state, result.code) == (ChannelState.UNKNOWN, "NO_ANSWER")


def test_an_answer_signed_by_someone_else_is_unknown(direct_settings, gateway, order_no):
    _, stranger_public = rsa_keypair_pem()
    fooled = build({**direct_settings, "alipay_public_key": stranger_public}, gateway=gateway, timeout_s=2)
    result = fooled.scan_pay(ScanPayRequest(order_no(), 100, "午餐", "281234567890121234"))
    assert (result.state, result.code) == (ChannelState.UNKNOWN, "SIGN_MISMATCH")


def test_a_request_signed_with_the_wrong_app_key_is_refused(direct_settings, gateway, order_no):
    stranger_private, _ = rsa_keypair_pem()
    wrong = build({**direct_settings, "app_private_key": stranger_private}, gateway=gateway, timeout_s=2)
    result = wrong.scan_pay(ScanPayRequest(order_no(), 100, "午餐", "281234567890121234"))
    assert (result.state, result.code) == (ChannelState.FAIL, "isv.invalid-signature")
    assert result.message.startswith("验签出错")


def test_a_refusal_message_never_echoes_the_signed_parameters(isv_settings, gateway, order_no):
    """Alipay's isv.invalid-signature sub_msg repeats the request, app_auth_token included."""
    stranger_private, _ = rsa_keypair_pem()
    wrong = build({**isv_settings, "app_private_key": stranger_private}, gateway=gateway, timeout_s=2)
    result = wrong.query(order_no())
    assert result.code == "isv.invalid-signature"
    assert isv_settings["app_auth_token"] not in result.message and "app_id=" not in result.message


def test_an_unknown_app_gets_an_unsigned_answer_which_is_unknown(direct_settings, gateway, order_no):
    stranger = build({**direct_settings, "app_id": "2021009999999999"}, gateway=gateway, timeout_s=2)
    result = stranger.query(order_no())
    assert (result.state, result.code) == (ChannelState.UNKNOWN, "isv.invalid-app-id")


def test_bare_base64_keys_from_the_alipay_console_work(direct_settings, gateway, order_no):
    def bare(pem: str) -> str:
        return "".join(line for line in pem.splitlines() if not line.startswith("-----"))

    console = build({**direct_settings, "app_private_key": bare(direct_settings["app_private_key"]),
                     "alipay_public_key": bare(direct_settings["alipay_public_key"])}, gateway=gateway, timeout_s=2)
    assert console.query(order_no()).trade_status is TradeStatus.NOT_FOUND


def test_a_bad_amount_is_our_bug_and_raises(channel, order_no):
    with pytest.raises(ValueError):
        channel.scan_pay(ScanPayRequest(order_no(), -1, "午餐", "281234567890121234"))


def test_missing_settings_are_refused_at_build(direct_settings):
    with pytest.raises(ValueError, match="seller_id"):
        build({k: v for k, v in direct_settings.items() if k != "seller_id"})


def test_repr_never_shows_keys(channel, direct_settings):
    assert "PRIVATE" not in repr(channel) and direct_settings["app_id"] in repr(channel)
