"""Golden notification bodies (tests/fixtures/alipay): exact parsed fields or a rejection with a reason."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from chalicelib.channels.alipay import AlipayChannel
from chalicelib.channels.base import NotificationRejected, PaymentNotice

FIXTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "alipay"
HEADERS = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
PAID_AT = datetime(2026, 3, 14, 12, 30, 4, tzinfo=timezone(timedelta(hours=8))).timestamp()


@pytest.fixture(scope="module")
def channel() -> AlipayChannel:
    # No gateway calls here: the app key only has to load, so the test key stands in for it too.
    return AlipayChannel({
        "app_id": "2021000000000001",
        "seller_id": "2088000000000001",
        "app_private_key": (FIXTURES / "TEST_ONLY_platform_key.pem").read_text(),
        "alipay_public_key": (FIXTURES / "TEST_ONLY_platform_public_key.pem").read_text(),
    })


def _body(name: str) -> bytes:
    return (FIXTURES / f"{name}.form").read_bytes()


def test_genuine(channel):
    assert channel.parse_notification(HEADERS, _body("genuine")) == PaymentNotice(
        out_trade_no="SP20260314A0001", trade_no="2026031422001477841412345678", amount_fen=1250,
        paid_at=PAID_AT, merchant_ref="2088000000000001", paid=True)


def test_unknown_order_passes_the_channel(channel):
    """Only the service knows our orders; it rejects this one when it looks the order up."""
    notice = channel.parse_notification(HEADERS, _body("unknown_order"))
    assert (notice.out_trade_no, notice.amount_fen, notice.paid) == ("SP-NO-SUCH-ORDER", 1250, True)


def test_wait_buyer_pay_is_not_a_payment(channel):
    assert channel.parse_notification(HEADERS, _body("wait_buyer_pay")) == PaymentNotice(
        out_trade_no="SP20260314A0001", trade_no="2026031422001477841412345678", amount_fen=1250,
        paid_at=0.0, merchant_ref="2088000000000001", paid=False)


@pytest.mark.parametrize("name, reason", [
    ("forged_signature", "bad signature"),
    ("tampered_amount", "bad signature"),
    ("wrong_app_id", "app_id is not this merchant's app"),
    ("wrong_seller_id", "seller_id is not this merchant"),
    ("amount_exponent", "total_amount is not a yuan amount"),
    ("amount_three_decimals", "total_amount is not a yuan amount"),
])
def test_rejected(channel, name, reason):
    with pytest.raises(NotificationRejected) as rejected:
        channel.parse_notification(HEADERS, _body(name))
    assert rejected.value.reason == reason


def _resign_free_variants() -> list[tuple[str, bytes, str]]:
    genuine = _body("genuine")
    return [
        ("no sign", b"&".join(p for p in genuine.split(b"&") if not p.startswith(b"sign=")), "unsigned notification"),
        ("RSA1", genuine.replace(b"sign_type=RSA2", b"sign_type=RSA"), "sign_type is not RSA2"),
        ("duplicate field", genuine + b"&total_amount=0.01", "a field appears twice"),
        ("not utf-8", genuine.replace(b"subject=", b"subject=%FF"), "body is not a UTF-8 urlencoded form"),
        ("raw bytes", genuine + "&x=午".encode(), "body is not a UTF-8 urlencoded form"),
        ("junk", b"<xml>success</xml>", "body is not a UTF-8 urlencoded form"),
        ("empty", b"", "unsigned notification"),
        ("sign with junk", genuine.replace(b"sign=", b"sign=%25%25"), "bad signature"),  # "%%" + the genuine one
    ]


@pytest.mark.parametrize("label, body, reason", _resign_free_variants(), ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_bodies_are_rejected_before_anything_is_read(channel, label, body, reason):
    with pytest.raises(NotificationRejected) as rejected:
        channel.parse_notification(HEADERS, body)
    assert rejected.value.reason == reason
