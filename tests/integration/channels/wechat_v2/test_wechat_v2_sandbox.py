"""The sandbox's WeChat Pay v2 platform itself: signatures, refusals, refund query and the bill."""
from __future__ import annotations

import urllib.request
from datetime import datetime

import pytest
from wechatpy.exceptions import WeChatPayException
from wechatpy.pay import WeChatPay

from chalicelib.channels.base import RefundRequest, ScanPayRequest
from sandbox.wechat_v2 import BEIJING, BILL_HEADER, BILL_SUMMARY_HEADER, from_xml, sign, to_xml

from wechat_v2_support import BILL_MCH_ID

# The example in WeChat Pay's signature documentation (签名算法), with its published results.
DOC_FIELDS = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test",
              "nonce_str": "ibuaiVcKdpRxkhJA"}
DOC_KEY = "192006250b4c09247ec02edce69f6a2d"


def test_signature_known_answers():
    assert sign(DOC_FIELDS, DOC_KEY) == "9A0A8659F005D6984697E2CA0A9CF3B7"
    assert sign(DOC_FIELDS, DOC_KEY, "HMAC-SHA256") == \
        "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
    assert sign({**DOC_FIELDS, "attach": "", "sign": "X"}, DOC_KEY) == "9A0A8659F005D6984697E2CA0A9CF3B7"


def post_raw(gateway: str, endpoint: str, body: bytes) -> dict[str, str]:
    request = urllib.request.Request(gateway + endpoint, body, {"Content-Type": "text/xml"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return from_xml(answer.read())


@pytest.mark.parametrize("body, message", [
    (b"garbage", "XML格式错误"),
    (b'<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><mch_id>&x;</mch_id></xml>', "XML格式错误"),
    (to_xml({"mch_id": "1999999999", "nonce_str": "n", "sign": "X"}), "mch_id参数格式错误或商户号不存在"),
    (to_xml({"mch_id": BILL_MCH_ID, "nonce_str": "n", "sign": "X"}), "签名错误"),
    (to_xml({"mch_id": BILL_MCH_ID, "nonce_str": "n", "sign_type": "SHA1", "sign": "X"}), "sign_type参数格式错误"),
])
def test_platform_refusals_are_return_code_fail(sdk_base_url, body, message):
    answer = post_raw(sdk_base_url, "pay/orderquery", body)

    assert answer == {"return_code": "FAIL", "return_msg": message}


@pytest.fixture
def sdk_client(sdk_base_url, settings_for):
    """The bare SDK, for the calls the channel does not make (bill, refund query)."""
    def client(mch_id: str) -> WeChatPay:
        settings = settings_for(mch_id)
        pay = WeChatPay(settings["appid"], settings["api_key"], mch_id, timeout=5)
        pay.API_BASE_URL = sdk_base_url
        return pay

    return client


def test_refund_query(channel, sdk_client, new_order_id):
    out_trade_no = new_order_id()
    channel.scan_pay(ScanPayRequest(out_trade_no, 900, "午餐", "104567890123451234"))
    refund = channel.refund(RefundRequest(out_trade_no, f"{out_trade_no}-R1", 900, 250, "x"))

    answer = sdk_client("1900000109").refund.query(out_trade_no=out_trade_no)

    assert (answer["refund_count"], answer["refund_fee_0"], answer["refund_status_0"]) == ("1", "250", "SUCCESS")
    assert answer["refund_id_0"] == refund.trade_no


def test_bill_of_the_day(make_channel, sdk_client, native_order, scan, new_order_id):
    channel = make_channel(BILL_MCH_ID)
    paid_by_code = new_order_id()
    assert channel.scan_pay(ScanPayRequest(paid_by_code, 1000, "早餐", "104567890123451234")).ok
    qr_order = native_order(amount_fen=1250)
    scan(channel.create_native_qr(qr_order).qr)
    reversed_one = new_order_id()
    assert channel.scan_pay(ScanPayRequest(reversed_one, 200, "饮料", "104567890123451234")).ok
    assert channel.refund(RefundRequest(paid_by_code, f"{paid_by_code}-R1", 1000, 300, "x")).ok
    assert channel.cancel(reversed_one).ok
    channel.create_native_qr(native_order(amount_fen=999))  # never paid: not on the bill

    bill = sdk_client(BILL_MCH_ID).tools.download_bill(datetime.now(BEIJING).date())

    lines = bill.splitlines()
    assert lines[0] == BILL_HEADER and lines[-2] == BILL_SUMMARY_HEADER
    rows = [[value[1:] for value in line.split(",")] for line in lines[1:-2]]
    assert all(value.startswith("`") for line in lines[1:-2] + lines[-1:] for value in line.split(","))
    assert all(len(row) == 27 for row in rows)
    by_status = sorted((row[9], row[6], row[12], row[16], row[22]) for row in rows)
    assert by_status == sorted([
        ("SUCCESS", paid_by_code, "10.00", "0.00", "0.06000"),
        ("SUCCESS", qr_order.out_trade_no, "12.50", "0.00", "0.07500"),
        ("SUCCESS", reversed_one, "2.00", "0.00", "0.01200"),
        ("REFUND", paid_by_code, "0.00", "3.00", "-0.01800"),
        ("REVOKED", reversed_one, "0.00", "2.00", "-0.01200"),
    ])
    assert {row[2] for row in rows} == {BILL_MCH_ID} and {row[3] for row in rows} == {"0"}
    assert {row[23] for row in rows} == {"0.60%"}
    assert lines[-1] == "`5,`24.50,`5.00,`0.00,`0.11700,`24.50,`5.00"


def test_no_bill_for_a_day_without_trades(sdk_client):
    with pytest.raises(WeChatPayException) as error:
        sdk_client(BILL_MCH_ID).tools.download_bill("20200101")

    assert error.value.return_msg == "No Bill Exist"
