"""XML entity attacks sent to the webhooks that do not speak XML (WeChat Pay v3, Alipay) are refused with
the answer each platform expects, without a crash, without a trace of /etc/passwd anywhere, and without
any change. (WeChat Pay v2, which does parse XML, is covered in test_notify_wechat_v2.py.)"""
from __future__ import annotations

import json

import pytest

import notify_support as support
from notify_support import ALIPAY, V3, assert_refused_without_change

ATTACKS = ["xxe.xml", "billion_laughs.xml"]  # the v2 fixtures: a DOCTYPE with file:///etc/passwd, an entity bomb
V3_GENUINE = json.loads((support.FIXTURES / "wechat_v3" / "public_key" / "genuine.json").read_text(encoding="utf-8"))
ALIPAY_FAILURE = (200, b"failure", "text/plain")


def v3_fail(reason: str) -> support.Answer:
    return 500, json.dumps({"code": "FAIL", "message": reason}).encode(), "application/json; charset=utf-8"


def v3_signed_headers(content_type: str) -> dict[str, str]:
    """A genuine delivery's Wechatpay-* headers: the attack body must still fail the signature."""
    return {**V3_GENUINE["headers"], "Content-Type": content_type}


@pytest.fixture
def merchant(container):  # type: ignore[no-untyped-def]
    """WeChat through v3 (public-key mode: no platform call) and Alipay, each with an open order."""
    world = support.seed_merchant(container, [support.wechat_v3_account("public_key"), support.alipay_account()])
    support.open_order(container, world, V3.ORDER, V3.AMOUNT_FEN, "wechat")
    support.open_order(container, world, ALIPAY.GENUINE["out_trade_no"], 1250, "alipay", txn=2)
    return world


CASES = [
    # (kind, headers with Content-Type, expected answer)
    ("wechat_v3", {"Content-Type": "application/json"}, v3_fail("missing Wechatpay-Signature")),
    ("wechat_v3", {"Content-Type": "text/xml"}, v3_fail("missing Wechatpay-Signature")),
    ("wechat_v3", v3_signed_headers("application/json"), v3_fail("bad signature")),
    ("wechat_v3", v3_signed_headers("text/xml"), v3_fail("bad signature")),
    ("alipay", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, ALIPAY_FAILURE),
    ("alipay", {"Content-Type": "text/xml"}, ALIPAY_FAILURE),
    ("wechat_v2", {"Content-Type": "text/xml"}, (404, b"unknown channel", "text/plain")),  # WeChat is v3 here
]
CASE_IDS = [f"{kind}-{headers['Content-Type'].split(';')[0]}-{'signed' if len(headers) > 1 else 'bare'}"
            for kind, headers, _ in CASES]


@pytest.mark.parametrize("name", ATTACKS)
@pytest.mark.parametrize("kind, headers, expected", CASES, ids=CASE_IDS)
def test_entity_attack_is_refused_cleanly(http, merchant, log_records, name, kind, headers, expected):
    body = (support.FIXTURES / "wechat_v2" / name).read_bytes()
    after = assert_refused_without_change(
        lambda: support.answer_of(support.post(http, kind, merchant.merchant_id, body, headers)), expected)
    assert {o["status"] for o in after["OrderModel"]} == {"CREATED"}
    assert after["LedgerEntryModel"] == []
    assert "notification" in log_records.text()  # the refusal was logged (and that log is checked too)
    support.assert_no_passwd(expected[1].decode(), repr(after), log_records.text())
