"""The platforms' daily bills, downloaded through each channel's SDK and read into one row shape.

    WeChat Pay v2   POST pay/downloadbill (wechatpy WeChatPay.tools.download_bill, bill_type ALL): text
    WeChat Pay v3   GET /v3/bill/tradebill + download (WeChatV3Channel.download_trade_bill): the same text
    Alipay          alipay.data.dataservice.bill.downloadurl.query (bill_type trade) through the channel's
                    sdk_client, then the URL: a ZIP with GBK names and a GBK CSV (业务明细)
    the bank        its settlement file, docs/bank-settlement-file.md (parse_bank_file)

WeChat's text bill: a header line, one line per row with every field prefixed by a backquote, then a
summary header and a summary line. Columns are found by their header names, not positions. Amounts are
yuan with two decimals; fees may carry up to five (WeChat shows them unrounded): a fee is rounded half
up to the fen here, symmetric for negative fees, as money.apply_rate rounds ours.

Fields are split on ",`" (every field starts with a backquote), so a comma inside a product name is read
as part of it.

A row is a payment ("PAY", amount = the payment) or a refund ("REFUND", amount = the refund, positive).
fee_fen is what the platform charges: positive on a payment, negative on a refund (the fee given back).

Answers follow the channels' rule: a bill we could not get or could not read is UNKNOWN (try again
later), never an empty bill; a day the platform says has no bill is SUCCESS with no rows.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Mapping

from chalicelib.channels.base import ChannelState

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
ALIPAY_BILL_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
MAX_BILL_BYTES = 64 * 1024 * 1024
_AMOUNT = re.compile(r"-?[0-9]{1,12}\.[0-9]{2,5}")


class BillFormatError(ValueError):
    """The file is not the format we read: the bill is UNKNOWN, never silently empty."""


@dataclass(frozen=True)
class BillRow:
    wallet: str
    kind: str  # PAY or REFUND
    out_trade_no: str
    trade_no: str
    out_refund_no: str
    amount_fen: int  # positive
    fee_fen: int  # + charged on a payment, - given back on a refund
    status: str  # the platform's word: SUCCESS, REFUND, REVOKED, PROCESSING ...
    at: float


@dataclass(frozen=True)
class Bill:
    state: ChannelState
    rows: tuple[BillRow, ...] = ()
    message: str = ""


def to_fen(text: str) -> int:
    """'12.50' -> 1250, '0.07500' -> 8 (half up, symmetric): exact decimal arithmetic, no float."""
    text = text.strip()
    if not _AMOUNT.fullmatch(text):
        raise BillFormatError(f"not an amount: {text[:20]!r}")
    negative = text.startswith("-")
    whole, fraction = text.lstrip("-").split(".")
    scale = 10 ** (len(fraction) - 2)  # units per fen
    units = int(whole) * 100 * scale + int(fraction)
    fen = (units * 2 + scale) // (2 * scale)
    return -fen if negative else fen


def _beijing(text: str) -> float:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp()
    except ValueError:
        raise BillFormatError(f"not a time: {text[:25]!r}") from None


# --- WeChat's text bill -----------------------------------------------------------------------

def parse_wechat_bill(text: str) -> list[BillRow]:
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or not lines[0].startswith("交易时间"):
        raise BillFormatError("not a WeChat Pay bill")
    header = lines[0].lstrip("\ufeff").split(",")
    column = {name: index for index, name in enumerate(header)}
    needed = ("交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "商户退款单号", "退款金额", "退款状态",
              "手续费")
    if any(name not in column for name in needed):
        raise BillFormatError("the bill lacks a column we read")
    rows = []
    for line in lines[1:]:
        if line.startswith("总交易单数"):
            break
        if not line.startswith("`"):
            raise BillFormatError("a bill line does not start with a backquote")
        values = line[1:].split(",`")  # every field starts with a backquote; a product name may hold a comma
        if len(values) != len(header):
            raise BillFormatError("a bill line has the wrong number of fields")
        get = lambda name: values[column[name]]  # noqa: E731
        status = get("交易状态")
        fee = to_fen(get("手续费"))
        if status == "SUCCESS":
            rows.append(BillRow("wechat", "PAY", get("商户订单号"), get("微信订单号"), "", to_fen(get("应结订单金额")),
                                fee, status, _beijing(get("交易时间"))))
        else:  # REFUND, REVOKED: money going back, with the refund's own status
            rows.append(BillRow("wechat", "REFUND", get("商户订单号"), get("微信订单号"), get("商户退款单号"),
                                to_fen(get("退款金额")), fee, get("退款状态") or status, _beijing(get("交易时间"))))
    return rows


# --- Alipay's zipped GBK CSV ------------------------------------------------------------------

def parse_alipay_bill_zip(data: bytes) -> list[BillRow]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data), metadata_encoding="gbk")
        name = next(n for n in archive.namelist() if n.endswith("_业务明细.csv"))
        text = archive.read(name).decode("gbk")
    except (zipfile.BadZipFile, StopIteration, UnicodeDecodeError, KeyError):
        raise BillFormatError("not an Alipay trade bill archive") from None
    lines = text.replace("\r\n", "\n").split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("#") and line.rstrip("-").endswith("业务明细列表"))
        end = next(i for i, line in enumerate(lines) if line.startswith("#") and "业务明细列表结束" in line)
    except StopIteration:
        raise BillFormatError("the Alipay bill has no detail section") from None
    rows = []
    for record in csv.DictReader(lines[start + 1:end]):
        try:
            kind = {"交易": "PAY", "退款": "REFUND"}[record["业务类型"].strip()]
            amount = to_fen(record["订单金额（元）"])
            rows.append(BillRow(
                "alipay", kind, record["商户订单号"].strip(), record["支付宝交易号"].strip(),
                record["退款批次号/请求号"].strip() if kind == "REFUND" else "", abs(amount),
                -to_fen(record["服务费（元）"]), "SUCCESS", _beijing(record["完成时间"])))
        except KeyError as error:
            raise BillFormatError(f"the Alipay bill lacks {error}") from None
    return rows


# --- downloads --------------------------------------------------------------------------------

def _http_get(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 - the platform's URL
        return answer.read(MAX_BILL_BYTES + 1)


def _wechat_v2(settings: Mapping[str, str], gateway: str | None, timeout_s: float, day: date,
               clock: Callable[[], float]) -> Bill:
    from chalicelib.channels import wechat_v2

    bill = wechat_v2.build(dict(settings), gateway, timeout_s, clock).download_trade_bill(day)
    if bill.state is not ChannelState.SUCCESS:
        return Bill(ChannelState.UNKNOWN, message=bill.message)
    if not bill.text:
        return Bill(ChannelState.SUCCESS, message="no bill: no trades that day")
    return Bill(ChannelState.SUCCESS, tuple(parse_wechat_bill(bill.text)))


def _wechat_v3(settings: Mapping[str, str], gateway: str | None, timeout_s: float, day: date,
               clock: Callable[[], float]) -> Bill:
    from chalicelib.channels import wechat_v3

    bill = wechat_v3.build(dict(settings), gateway, timeout_s, clock).download_trade_bill(day)
    if bill.state is not ChannelState.SUCCESS:
        return Bill(ChannelState.UNKNOWN, message=f"tradebill: {bill.code} {bill.message}".strip())
    return Bill(ChannelState.SUCCESS, tuple(parse_wechat_bill(bill.text)) if bill.text else ())


def _alipay(settings: Mapping[str, str], gateway: str | None, timeout_s: float, day: date,
            clock: Callable[[], float]) -> Bill:
    from chalicelib.channels.alipay import sdk_client

    answer = sdk_client(settings, gateway, timeout_s, clock).server_api(
        ALIPAY_BILL_METHOD, {"bill_type": "trade", "bill_date": day.isoformat()})
    if not isinstance(answer, dict) or answer.get("code") != "10000" or not answer.get("bill_download_url"):
        code = answer.get("sub_code") if isinstance(answer, dict) else ""
        return Bill(ChannelState.UNKNOWN, message=f"bill url: {code}")
    data = _http_get(str(answer["bill_download_url"]), timeout_s)
    if len(data) > MAX_BILL_BYTES:
        return Bill(ChannelState.UNKNOWN, message="bill larger than we read")
    return Bill(ChannelState.SUCCESS, tuple(parse_alipay_bill_zip(data)))


_DOWNLOADERS = {"wechat_v2": _wechat_v2, "wechat_v3": _wechat_v3, "alipay": _alipay}


def download_bill(kind: str, settings: Mapping[str, str], day: date, gateway: str | None, timeout_s: float = 10.0,
                  clock: Callable[[], float] = time.time) -> Bill:
    """The day's bill of one channel account (a merchant's own, or the bank's for one sub-merchant)."""
    downloader = _DOWNLOADERS.get(kind)
    if downloader is None:
        return Bill(ChannelState.FAIL, message=f"no bills for channel kind {kind!r}")
    try:
        return downloader(settings, gateway, timeout_s, day, clock)
    except BillFormatError as error:
        return Bill(ChannelState.UNKNOWN, message=f"unreadable bill: {error}")
    except Exception as error:  # noqa: BLE001 - timeouts, refused connections, SDK errors: try again later
        return Bill(ChannelState.UNKNOWN, message=f"{type(error).__name__}: {str(error)[:200]}")


# --- the bank's settlement file ---------------------------------------------------------------

BANK_FILE_MAGIC = "BANKSETTLE"


@dataclass(frozen=True)
class BankLine:
    wallet: str  # wechat / alipay
    sub_merchant: str  # WeChat sub_mch_id, or Alipay seller PID
    payments: int
    gross_fen: int
    refunds: int
    refunds_fen: int
    fee_fen: int
    net_fen: int


@dataclass(frozen=True)
class BankFile:
    state: ChannelState
    provider_id: str = ""
    day: date | None = None
    lines: tuple[BankLine, ...] = field(default_factory=tuple)
    message: str = ""


def _int(text: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,15}", text):
        raise BillFormatError(f"not a whole number of fen: {text[:20]!r}")
    return int(text)


def parse_bank_file(text: str) -> BankFile:
    """docs/bank-settlement-file.md: header, M lines, END with the count, the net sum and a SHA-256."""
    lines = text.split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2 or not lines[0].startswith(BANK_FILE_MAGIC + "|") or not lines[-1].startswith("END|"):
        raise BillFormatError("not a bank settlement file")
    head = lines[0].split("|")
    if len(head) != 5 or head[1] != "1":
        raise BillFormatError("unknown bank settlement file version")
    end = lines[-1].split("|")
    body = "".join(line + "\r\n" for line in lines[:-1])
    if len(end) != 4 or hashlib.sha256(body.encode("utf-8")).hexdigest() != end[3]:
        raise BillFormatError("the bank settlement file does not match its SHA-256")
    parsed = []
    for line in lines[1:-1]:
        fields = line.split("|")
        if len(fields) != 9 or fields[0] != "M" or fields[1] not in ("wechat", "alipay"):
            raise BillFormatError("a bank settlement line is malformed")
        numbers = [_int(value) for value in fields[3:]]
        parsed.append(BankLine(fields[1], fields[2], *numbers))
        if numbers[1] - numbers[3] - numbers[4] != numbers[5]:
            raise BillFormatError("a bank settlement line does not add up")
    if _int(end[1]) != len(parsed) or _int(end[2]) != sum(line.net_fen for line in parsed):
        raise BillFormatError("the bank settlement file's totals do not match its lines")
    try:
        day = datetime.strptime(head[3], "%Y%m%d").date()
    except ValueError:
        raise BillFormatError("the bank settlement file's date is malformed") from None
    return BankFile(ChannelState.SUCCESS, head[2], day, tuple(parsed))


def download_bank_file(url: str, day: date, timeout_s: float = 10.0) -> BankFile:
    """GET <url>?date=YYYYMMDD. 404: the bank has not published that day yet (UNKNOWN: try later)."""
    try:
        text = _http_get(f"{url}?date={day:%Y%m%d}", timeout_s).decode("utf-8")
        parsed = parse_bank_file(text)
    except BillFormatError as error:
        return BankFile(ChannelState.UNKNOWN, message=f"unreadable bank file: {error}")
    except Exception as error:  # noqa: BLE001 - HTTP errors and timeouts: try again later
        return BankFile(ChannelState.UNKNOWN, message=f"{type(error).__name__}: {str(error)[:200]}")
    if parsed.day != day:
        return BankFile(ChannelState.UNKNOWN, message=f"the bank sent the file of {parsed.day}")
    return parsed
