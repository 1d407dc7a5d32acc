"""The day's trade bill, made by the sandbox from the trades it processed, fetched through wechatpayv3
(apply, then download, gunzip, SHA1 check). Only this test trades with MCHID_BILLS, so the bill is exact."""
from __future__ import annotations

import time
from datetime import timedelta

from chalicelib.channels.base import ChannelState, NativeOrderRequest, RefundRequest, ScanPayRequest
from chalicelib.domain.clock import business_date
from sandbox import wechat_v3 as platform

from wechat_v3_support import MCHID_BILLS


def _rows(text: str) -> list[list[str]]:
    return [[field.lstrip("`") for field in line.split(",")] for line in text.splitlines()]


def test_trade_bill_lists_payments_and_refunds_of_the_day(make_channel, scan, sandbox):
    channel = make_channel(MCHID_BILLS)
    assert channel.scan_pay(ScanPayRequest("BILL-S1", 1000, "早餐", "134567890123451234")).ok
    qr = channel.create_native_qr(NativeOrderRequest("BILL-N1", 2550, "午餐", "http://127.0.0.1:9/n",
                                                     time.time() + 300)).qr
    assert scan(qr)[0] == 200
    assert channel.refund(RefundRequest("BILL-S1", "BILL-R1", 1000, 400, "退一份")).ok
    unpaid = channel.create_native_qr(NativeOrderRequest("BILL-N2", 100, "未付", "http://127.0.0.1:9/n",
                                                         time.time() + 300))
    assert unpaid.ok  # never paid: not in the bill

    today = business_date(time.time())
    bill = channel.download_trade_bill(today)
    assert bill.state is ChannelState.SUCCESS, bill
    rows = _rows(bill.text)
    assert rows[0] == platform.BILL_HEADER.split(",")
    body = {(row[6], row[9]): row for row in rows[1:-2]}
    assert sorted(body) == [("BILL-N1", "SUCCESS"), ("BILL-S1", "REFUND"), ("BILL-S1", "SUCCESS")]
    header = rows[0]
    paid = dict(zip(header, body[("BILL-N1", "SUCCESS")]))
    trade = sandbox.ctx.book.get(platform.NAME, MCHID_BILLS, "BILL-N1")
    assert (paid["商户号"], paid["微信订单号"], paid["交易类型"], paid["应结订单金额"], paid["订单金额"],
            paid["手续费"], paid["费率"]) == (MCHID_BILLS, trade.trade_no, "NATIVE", "25.50", "25.50", "0.15", "0.60%")
    refund = dict(zip(header, body[("BILL-S1", "REFUND")]))
    assert (refund["商户退款单号"], refund["退款金额"], refund["申请退款金额"], refund["应结订单金额"],
            refund["手续费"], refund["退款状态"]) == ("BILL-R1", "4.00", "4.00", "0.00", "-0.02", "SUCCESS")
    assert rows[-2] == platform.BILL_SUMMARY_HEADER.split(",")
    # 3 rows; settled 10.00 + 25.50; refunds 4.00; fees 0.06 + 0.15 - 0.02
    assert rows[-1] == ["3", "35.50", "4.00", "0.00", "0.19", "35.50", "4.00"]


def test_a_day_without_trades_has_no_statement(make_channel):
    bill = make_channel(MCHID_BILLS).download_trade_bill(business_date(time.time()) - timedelta(days=3))
    assert (bill.state, bill.text, bill.code) == (ChannelState.SUCCESS, "", "NO_STATEMENT_EXIST")
