"""Reading the bills: WeChat's text, Alipay's zipped GBK CSV (both as the sandbox writes them) and the bank's file."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, time

import pytest

from chalicelib.channels.bills import (
    BillFormatError,
    BillRow,
    parse_alipay_bill_zip,
    parse_bank_file,
    parse_wechat_bill,
    to_fen,
)
from chalicelib.domain.clock import BEIJING
from sandbox import alipay as sandbox_alipay
from sandbox import wechat_v2 as sandbox_wechat_v2
from sandbox.trades import SimRefund, SimTrade

DAY = date(2026, 11, 18)
NOON = datetime.combine(DAY, time(12), BEIJING).timestamp()


@pytest.mark.parametrize("text, fen", [("12.50", 1250), ("0.07500", 8), ("-0.07500", -8), ("0.07499", 7),
                                       ("-0.01800", -2), ("0.00", 0), ("100000.00", 10_000_000)])
def test_amounts_round_half_up_to_the_fen(text, fen):
    assert to_fen(text) == fen


@pytest.mark.parametrize("text", ["1.2", "12", "abc", "1e3", "１2.00", "12.345678", ""])
def test_anything_else_is_not_an_amount(text):
    with pytest.raises(BillFormatError):
        to_fen(text)


def trade(platform: str, out_trade_no: str, amount: int, refunds: list[SimRefund] = (), **extra: str) -> SimTrade:
    return SimTrade(platform, "M", out_trade_no, amount, "午餐, 套餐A", "", "PAY", NOON - 60, status="SUCCESS",
                    trade_no=f"42{out_trade_no}", paid_at=NOON, payer="p1", refunds=list(refunds), extra=extra)


def test_wechat_text_bill():
    wechat = dict(appid="wx1", mch_id="1900000109", bank_type="OTHERS", fee_rate_ppm="6000")
    trades = [trade("wechat_v2", "P1", 1250, [SimRefund("RP1", "50RP1", 300, NOON + 60)], **wechat),
              trade("wechat_v2", "P2", 84, **wechat)]
    text = sandbox_wechat_v2.bill_text(sandbox_wechat_v2.bill_rows(trades, "20261118"))

    assert sorted(parse_wechat_bill(text), key=lambda r: (r.out_trade_no, r.kind)) == [
        BillRow("wechat", "PAY", "P1", "42P1", "", 1250, 8, "SUCCESS", NOON),       # 0.07500 -> 8 fen
        BillRow("wechat", "REFUND", "P1", "42P1", "RP1", 300, -2, "SUCCESS", NOON + 60),  # -0.01800 -> -2
        BillRow("wechat", "PAY", "P2", "42P2", "", 84, 1, "SUCCESS", NOON),          # 0.00504 -> 1
    ]


def test_alipay_zipped_gbk_bill():
    trades = [trade("alipay", "P3", 2500, [SimRefund("RF3", "2026RF3", 500, NOON + 60)], seller_id="2088000000000109"),
              trade("alipay", "P4", 84, seller_id="2088000000000109")]
    archive = sandbox_alipay.trade_bill_zip("2088000000000109", DAY, trades, 6000, NOON + 86400)

    assert sorted(parse_alipay_bill_zip(archive), key=lambda r: (r.out_trade_no, r.kind)) == [
        BillRow("alipay", "PAY", "P3", "42P3", "", 2500, 15, "SUCCESS", NOON),
        BillRow("alipay", "REFUND", "P3", "42P3", "RF3", 500, -3, "SUCCESS", NOON + 60),
        BillRow("alipay", "PAY", "P4", "42P4", "", 84, 1, "SUCCESS", NOON),
    ]


@pytest.mark.parametrize("parse, data", [
    (parse_wechat_bill, "<xml><return_code>FAIL</return_code></xml>"),
    (parse_wechat_bill, "交易时间,商户订单号\r\n`x\r\n"),
    (parse_alipay_bill_zip, b"PK not really a zip"),
])
def test_unreadable_bills_are_refused_not_read_as_empty(parse, data):
    with pytest.raises(BillFormatError):
        parse(data)


def bank_text(lines: list[str], count: int | None = None, net: int | None = None, digest: str | None = None) -> str:
    body = "".join(line + "\r\n" for line in ["BANKSETTLE|1|bank|20261118|20261119063000", *lines])
    nets = sum(int(line.split("|")[-1]) for line in lines)
    return body + (f"END|{len(lines) if count is None else count}|{nets if net is None else net}|"
                   f"{digest or hashlib.sha256(body.encode()).hexdigest()}\r\n")


def test_bank_file():
    parsed = parse_bank_file(bank_text(["M|alipay|2088000000000109|2|2584|1|500|13|2071",
                                        "M|wechat|1900000109|3|1584|1|1250|2|332"]))
    assert (parsed.provider_id, parsed.day) == ("bank", DAY)
    assert [(l.wallet, l.sub_merchant, l.gross_fen, l.fee_fen, l.net_fen) for l in parsed.lines] == [
        ("alipay", "2088000000000109", 2584, 13, 2071), ("wechat", "1900000109", 1584, 2, 332)]


@pytest.mark.parametrize("text", [
    bank_text(["M|wechat|1900000109|3|1584|1|1250|2|333"]),                # does not add up
    bank_text(["M|wechat|1900000109|3|1584|1|1250|2|332"], count=2),       # wrong count
    bank_text(["M|wechat|1900000109|3|1584|1|1250|2|332"], net=1),         # wrong net sum
    bank_text(["M|wechat|1900000109|3|1584|1|1250|2|332"], digest="0" * 64),  # tampered
    bank_text(["M|wechat|1900000109|3|15.84|1|1250|2|332"]),               # not whole fen
    bank_text(["M|unionpay|1900000109|3|1584|1|1250|2|332"]),              # unknown wallet
    "BANKSETTLE|2|bank|20261118|20261119063000\r\nEND|0|0|x\r\n",          # unknown version
])
def test_a_bank_file_that_does_not_check_out_is_refused(text):
    with pytest.raises(BillFormatError):
        parse_bank_file(text)
