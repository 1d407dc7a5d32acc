"""Refunds, and the client certificate that the /secapi/ endpoints want."""
from __future__ import annotations

import datetime
import logging
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.channels.base import ChannelState, RefundRequest, ScanPayRequest, TradeStatus
from chalicelib.channels.wechat_v2 import build

from wechat_v2_support import CERT_MCH_ID

INSTANT = "114567890123451234"


@pytest.fixture
def paid_order(channel, new_order_id):
    def pay(amount_fen: int, target=None) -> str:  # type: ignore[no-untyped-def]
        out_trade_no = new_order_id()
        result = (target or channel).scan_pay(ScanPayRequest(out_trade_no, amount_fen, "午餐", INSTANT))
        assert result.ok
        return out_trade_no

    return pay


def refund_request(out_trade_no: str, total_fen: int, refund_fen: int, out_refund_no: str = "R1") -> RefundRequest:
    return RefundRequest(out_trade_no=out_trade_no, out_refund_no=f"{out_trade_no}-{out_refund_no}",
                         total_fen=total_fen, refund_fen=refund_fen, reason="菜品售罄")


def test_partial_refunds_then_too_much(channel, paid_order):
    out_trade_no = paid_order(1000)

    first = channel.refund(refund_request(out_trade_no, 1000, 400, "R1"))
    second = channel.refund(refund_request(out_trade_no, 1000, 600, "R2"))
    too_much = channel.refund(refund_request(out_trade_no, 1000, 1, "R3"))

    assert (first.state, first.amount_fen) == (ChannelState.SUCCESS, 400)
    assert first.trade_no and first.trade_no != second.trade_no  # refund ids
    assert second.state is ChannelState.SUCCESS
    assert (too_much.state, too_much.code) == (ChannelState.FAIL, "ERROR")
    assert channel.query(out_trade_no).trade_status is TradeStatus.REFUNDED


def test_refund_retried_with_same_out_refund_no_refunds_once(channel, paid_order, sandbox):
    out_trade_no = paid_order(700)
    request = refund_request(out_trade_no, 700, 700)

    first, again = channel.refund(request), channel.refund(request)

    assert (first.state, again.state) == (ChannelState.SUCCESS, ChannelState.SUCCESS)
    assert first.trade_no == again.trade_no
    assert sandbox.ctx.book.get("wechat_v2", "1900000109", out_trade_no).refunded_fen == 700


def test_refund_of_unknown_order_fails(channel, new_order_id):
    result = channel.refund(refund_request(new_order_id(), 100, 100))

    assert (result.state, result.code) == (ChannelState.FAIL, "ORDERNOTEXIST")


def test_refund_with_wrong_total_fails(channel, paid_order):
    out_trade_no = paid_order(500)

    result = channel.refund(refund_request(out_trade_no, 900, 100))

    assert (result.state, result.code) == (ChannelState.FAIL, "PARAM_ERROR")


def test_service_provider_refund(bank_channel, paid_order):
    out_trade_no = paid_order(880, target=bank_channel)

    assert bank_channel.refund(refund_request(out_trade_no, 880, 80)).ok


# --- the client certificate -----------------------------------------------------------------

def self_signed_pem() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERT_MCH_ID)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def test_certificate_settings_are_written_privately_and_refunds_work(make_channel, paid_order):
    cert_pem, key_pem = self_signed_pem()
    channel = make_channel(CERT_MCH_ID, mch_cert=cert_pem, mch_key=key_pem)
    out_trade_no = paid_order(200, target=channel)

    assert channel.refund(refund_request(out_trade_no, 200, 200)).ok  # plain HTTP: no handshake uses it
    assert channel.cancel(paid_order(100, target=channel)).ok

    cert_path, key_path = channel._client.mch_cert, channel._client.mch_key
    for path, pem in ((cert_path, cert_pem), (key_path, key_pem)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        with open(path, encoding="ascii") as handle:
            assert handle.read() == pem
    shown = repr(channel._settings)
    assert key_pem not in shown and channel._settings.api_key not in shown


def test_https_gateway_without_certificate_fails_refund_and_cancel_before_sending(settings_for):
    # Port 9 (discard) on loopback: nothing listens, so any call that were sent would be UNKNOWN.
    channel = build(settings_for(), gateway="https://127.0.0.1:9/", timeout_s=0.5)

    refund = channel.refund(refund_request("T-none", 100, 100))
    cancel = channel.cancel("T-none")

    assert (refund.state, refund.code) == (ChannelState.FAIL, "CERT_MISSING")
    assert (cancel.state, cancel.code) == (ChannelState.FAIL, "CERT_MISSING")
    assert channel.query("T-none").state is ChannelState.UNKNOWN  # the others do try, and cannot connect


@pytest.mark.parametrize("broken", [
    {"api_key": ""}, {"mch_id": ""}, {"sign_type": "SHA1"}, {"mch_cert": "-----BEGIN CERTIFICATE-----"},
])
def test_bad_settings_are_refused_at_build(settings_for, broken):
    with pytest.raises(ValueError) as error:
        build({**settings_for(), **broken}, gateway=None, timeout_s=1)
    assert settings_for()["api_key"] not in str(error.value)


def test_base_url_is_set_on_the_instance_only(settings_for, gateway):
    from wechatpy.pay import WeChatPay

    local = build(settings_for(), gateway=gateway, timeout_s=1)
    production = build(settings_for(), gateway=None, timeout_s=1)

    assert local._client.API_BASE_URL == f"{gateway}/wxpay/"
    assert production._client.API_BASE_URL == "https://api.mch.weixin.qq.com/"
    assert WeChatPay.API_BASE_URL == "https://api.mch.weixin.qq.com/"


def test_api_key_never_reaches_the_logs_even_at_debug(make_channel, native_order, caplog):
    channel = make_channel()  # MD5: wechatpy logs the string it hashes, which ends with the key

    with caplog.at_level(logging.DEBUG):
        channel.create_native_qr(native_order())
        channel.query("T-not-there")

    assert "Request to WeChat API" in caplog.text  # the SDK did log at DEBUG
    assert channel._settings.api_key not in caplog.text
