"""WeChat Pay v2 golden notifications (tests/fixtures/wechat_v2) through the real webhook and channel.

Every answer is asserted exactly (HTTP 200 with WeChat's XML SUCCESS or FAIL and the reason, text/xml);
every rejection leaves the orders, ledger and dedupe tables exactly as they were.
"""
from __future__ import annotations

import json

import pytest

import notify_support as support
from chalicelib.store.models import MerchantModel
from notify_support import V2, assert_open, assert_paid_once, assert_refused_without_change

ORDER_ID = V2.PAYMENT["out_trade_no"]  # SP20260301000001
AMOUNT_FEN = int(V2.PAYMENT["total_fee"])  # 1250
TRADE_NO = V2.PAYMENT["transaction_id"]
ACK = (200, b"<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>",
       "text/xml")


def fail(reason: str) -> support.Answer:
    body = f"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[{reason}]]></return_msg></xml>"
    return 200, body.encode(), "text/xml"


def payload(name: str) -> bytes:
    return (support.FIXTURES / "wechat_v2" / name).read_bytes()


@pytest.fixture
def direct(container):  # type: ignore[no-untyped-def]
    """A direct (scheme 1) merchant with the fixtures' appid, mch_id and key, and the fixtures' order."""
    world = support.seed_merchant(container, [support.wechat_v2_account(V2.PROFILES["direct"])])
    support.open_order(container, world, ORDER_ID, AMOUNT_FEN, "wechat")
    return world


@pytest.fixture
def sub_merchant(container):  # type: ignore[no-untyped-def]
    """Scheme 2: the bank's WeChat account (the service provider) with this merchant bound as sub_mch_id."""
    bank = V2.PROFILES["service_provider"]
    bank_account = support.wechat_v2_account({"appid": bank["appid"], "mch_id": bank["mch_id"]})
    world = support.seed_merchant(container, [], scheme=2, bank_accounts=[bank_account],
                                  bank_binding={"wechat_sub_mch_id": bank["sub_mch_id"]})
    support.open_order(container, world, ORDER_ID, AMOUNT_FEN, "wechat")
    return world


def deliver(http, world, name: str, content_type: str = "text/xml"):  # type: ignore[no-untyped-def]
    response = support.post(http, "wechat_v2", world.merchant_id, payload(name), {"Content-Type": content_type})
    return support.answer_of(response)


@pytest.mark.parametrize("name", ["genuine_md5.xml", "genuine_hmac_sha256.xml"])
def test_genuine_notification_pays_the_order_once(http, direct, name):
    assert deliver(http, direct, name) == ACK
    assert_paid_once(ORDER_ID, "wechat", "wechat_v2", TRADE_NO, AMOUNT_FEN)


def test_genuine_service_provider_notification_pays_the_sub_merchants_order(http, sub_merchant):
    assert deliver(http, sub_merchant, "genuine_service_provider.xml") == ACK
    assert_paid_once(ORDER_ID, "wechat", "wechat_v2", TRADE_NO, AMOUNT_FEN)


def test_another_sub_merchants_notification_changes_nothing(http, sub_merchant):
    assert_refused_without_change(lambda: deliver(http, sub_merchant, "wrong_sub_mch_id.xml"),
                                  fail("sub_mch_id is not this merchant's"))
    assert_open(ORDER_ID)


BAD = [
    ("forged_signature.xml", "signature does not verify"),
    ("tampered_amount.xml", "signature does not verify"),
    ("wrong_appid.xml", "appid is not this merchant's"),
    ("wrong_mch_id.xml", "mch_id is not this merchant's"),
    ("genuine_service_provider.xml", "appid is not this merchant's"),  # the bank's traffic, sent to a direct merchant
    ("unknown_order.xml", "unknown order"),
    ("xxe.xml", "XML refused: DTDForbidden"),
    ("billion_laughs.xml", "XML refused: DTDForbidden"),
]


@pytest.mark.parametrize("name, reason", BAD)
def test_bad_notification_is_refused_and_changes_nothing(http, direct, name, reason):
    assert_refused_without_change(lambda: deliver(http, direct, name), fail(reason))
    assert_open(ORDER_ID)


def test_failed_payment_is_acknowledged_and_books_nothing(http, direct):
    assert_refused_without_change(lambda: deliver(http, direct, "payment_failed.xml"), ACK)
    assert_open(ORDER_ID)


def test_genuine_notification_for_another_merchants_order_changes_nothing(http, container, direct):
    """Same WeChat account, other merchant: our order id is checked against the stored order's merchant."""
    other = support.seed_merchant(container, [support.wechat_v2_account(V2.PROFILES["direct"])])
    assert_refused_without_change(lambda: deliver(http, other, "genuine_md5.xml"), fail("unknown order"))
    assert_open(ORDER_ID)


@pytest.mark.parametrize("name", ["xxe.xml", "billion_laughs.xml"])
@pytest.mark.parametrize("content_type", ["text/xml", "application/xml"])
def test_entity_attacks_leak_nothing_anywhere(http, direct, log_records, name, content_type):
    expected = fail("XML refused: DTDForbidden")
    after = assert_refused_without_change(lambda: deliver(http, direct, name, content_type), expected)
    assert "notification" in log_records.text()  # the refusal was logged (and that log is checked too)
    support.assert_no_passwd(expected[1].decode(), repr(after), log_records.text())


def test_twenty_genuine_deliveries_shuffled_with_bad_ones_book_once(http, direct):
    # WeChat redelivers the same bytes; the HMAC-SHA256 copy is the same payment signed the other way.
    deliveries = [("genuine_md5.xml", ACK)] * 20 + [("genuine_hmac_sha256.xml", ACK)] * 2 + [
        (name, fail(reason)) for name, reason in BAD] + [("payment_failed.xml", ACK)]
    support.assert_shuffled_answers(deliveries, lambda name: deliver(http, direct, name), seed=20260301)
    assert_paid_once(ORDER_ID, "wechat", "wechat_v2", TRADE_NO, AMOUNT_FEN)


def test_other_content_types_get_415_and_change_nothing(http, direct):
    send = lambda: deliver(http, direct, "genuine_md5.xml", "application/octet-stream")[0]  # noqa: E731
    assert_refused_without_change(send, 415)
    assert_open(ORDER_ID)


def test_the_merchants_key_is_stored_sealed(direct):
    """The channel that verified the payloads above was built from KMS-sealed settings."""
    entry = MerchantModel.get(direct.merchant_id).channels["wechat"]
    assert entry["sealed"] and "api_key" not in entry["settings"]
    assert V2.KEY not in json.dumps(entry)
