"""The sandbox's trade bill (alipay.data.dataservice.bill.downloadurl.query), as reconciliation will read it."""
from __future__ import annotations

import csv
import io
import time
import urllib.error
import urllib.request
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.channels.alipay import sdk_client
from chalicelib.channels.base import NativeOrderRequest, RefundRequest, ScanPayRequest
from sandbox.alipay import DETAIL_COLUMNS, DETAIL_END, DETAIL_START, SUMMARY_COLUMNS

BEIJING = timezone(timedelta(hours=8))
BILL_METHOD = "alipay.data.dataservice.bill.downloadurl.query"


def _bill_url(settings: dict, gateway: str, day: str, clock=time.time) -> dict:  # type: ignore[no-untyped-def]
    client = sdk_client(settings, gateway, timeout_s=3, clock=clock)  # stamps requests with the sandbox's time
    return client.server_api(BILL_METHOD, {"bill_type": "trade", "bill_date": day})


def _rows(text: str, start: str, end: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    body = lines[lines.index(start) + 1:lines.index(end)]
    return list(csv.DictReader(body))


def test_yesterdays_bill_lists_payments_and_refunds(sandbox, channel, isv_channel, direct_settings, gateway, scan,
                                                    receiver, order_no):
    qr_order, code_order, other_seller = order_no(), order_no(), order_no()
    created = channel.create_native_qr(NativeOrderRequest(qr_order, 1250, "午餐", receiver.url, time.time() + 600))
    scan(created.qr)
    channel.scan_pay(ScanPayRequest(code_order, 800, "早餐", "281234567890121234"))
    channel.refund(RefundRequest(code_order, "RF-1", 800, 300, "少打一份"))
    isv_channel.scan_pay(ScanPayRequest(other_seller, 999, "晚餐", "281234567890121234"))
    today = datetime.now(BEIJING).strftime("%Y-%m-%d")

    assert _bill_url(direct_settings, gateway, today)["sub_code"] == "isp.bill_not_exist"  # not before tomorrow

    real_clock = sandbox.ctx.clock
    sandbox.ctx.clock = lambda: real_clock() + 86400  # tomorrow: today's bill is ready
    try:
        answer = _bill_url(direct_settings, gateway, today, sandbox.ctx.clock)
    finally:
        sandbox.ctx.clock = real_clock
    assert answer["code"] == "10000"
    assert answer["bill_download_url"].startswith(f"{gateway}/alipay/bill/download?")
    with urllib.request.urlopen(answer["bill_download_url"], timeout=5) as download:
        archive = zipfile.ZipFile(io.BytesIO(download.read()), metadata_encoding="gbk")

    stem = f"{direct_settings['seller_id']}_{today.replace('-', '')}"
    assert sorted(archive.namelist()) == sorted([f"{stem}_业务明细.csv", f"{stem}_业务明细(汇总).csv"])
    detail = archive.read(f"{stem}_业务明细.csv").decode("gbk")
    lines = detail.splitlines()
    assert lines[0] == "#支付宝业务明细查询"
    assert lines[1] == f"#账号：[{direct_settings['seller_id']}0156]"
    assert lines[4].split(",") == list(DETAIL_COLUMNS)

    rows = _rows(detail, DETAIL_START, DETAIL_END)
    ours = {(r["商户订单号"].strip(), r["业务类型"]): r for r in rows}
    assert (qr_order, "交易") in ours and (code_order, "交易") in ours and (code_order, "退款") in ours
    assert not any(key[0] == other_seller for key in ours)  # another seller's trade is in its own bill
    assert ours[(qr_order, "交易")]["订单金额（元）"] == "12.50"
    assert ours[(qr_order, "交易")]["服务费（元）"] == "-0.08"  # 0.6 % of 12.50 = 0.075, half up
    assert ours[(code_order, "退款")]["商家实收（元）"] == "-3.00"
    assert ours[(code_order, "退款")]["退款批次号/请求号"] == "RF-1\t"
    assert ours[(qr_order, "交易")]["支付宝交易号"].endswith("\t")

    paid = [r for r in rows if r["业务类型"] == "交易"]
    paid_yuan = sum(int(r["商家实收（元）"].replace(".", "")) for r in paid)
    assert f"#交易合计：{len(paid)}笔，商家实收共{paid_yuan // 100}.{paid_yuan % 100:02d}元，商家优惠共0.00元" in lines

    summary = archive.read(f"{stem}_业务明细(汇总).csv").decode("gbk").splitlines()
    assert summary[0] == "#支付宝业务汇总查询"
    assert summary[4].split(",") == list(SUMMARY_COLUMNS)
    total = dict(zip(SUMMARY_COLUMNS, summary[5].split(",")))
    assert total["门店编号"] == "合计" and total["交易订单总笔数"] == str(len(paid))


def test_an_unknown_bill_token_is_refused(gateway):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{gateway}/alipay/bill/download?token=guessed", timeout=5)
    assert refused.value.code == 403


def test_only_trade_bills(direct_settings, gateway):
    answer = _bill_url(direct_settings, gateway, "2020-01-01")
    assert answer["code"] == "10000"  # a past day with nothing in it still has a (empty) bill
    other = sdk_client(direct_settings, gateway, timeout_s=3).server_api(
        BILL_METHOD, {"bill_type": "signcustomer", "bill_date": "2020-01-01"})
    assert other["code"] == "40004"
