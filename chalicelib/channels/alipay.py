"""Alipay (支付宝) as a payment channel, built on python-alipay-sdk's client.

Two ways one merchant can be set up, the same code for both:
- direct: the merchant's own app (app_id, its private key) collects into the merchant's account
  (seller_id, the merchant's 2088... PID);
- ISV (scheme 2, the bank aggregator): the bank's app signs every call and adds the merchant's
  `app_auth_token` as a common request parameter, so Alipay acts on the merchant's account.
  python-alipay-sdk does this in `ISVAliPay.build_body`; notifications then carry the bank's
  app_id and the merchant's seller_id.

Settings (`build(settings, gateway, timeout_s)`):
    app_id              the app that signs the calls (the merchant's, or the bank's in ISV mode)
    app_private_key     that app's RSA2 private key, PEM (or Alipay's bare base64)  -- SECRET
    alipay_public_key   Alipay's public key for that app, PEM (or bare base64)
    seller_id           the merchant's PID (2088...): the account the money goes to
    app_auth_token      optional, ISV mode only                                    -- SECRET

Alipay speaks Beijing time (every `timestamp`, `time_expire`, `gmt_payment`). The SDK stamps
requests with `datetime.now()`, the process's local time, which on Lambda is UTC: eight hours off,
and Alipay refuses such calls (isv.invalid-timestamp). `_BeijingTimestamp` restamps every request.

Answers map to SUCCESS / FAIL / UNKNOWN like this: 10000 is success; a signed 40004 is a business
refusal (FAIL) except the sub codes after which Alipay itself says "query" (ACQ.SYSTEM_ERROR,
ACQ.TRADE_HAS_SUCCESS); 10003 and 20000 are UNKNOWN; signed gateway refusals (40001, 40002,
40006, 20001) mean the call was not processed (FAIL, with the sub code so the console can say why).
Anything we cannot trust (exception, timeout, 5xx, non-JSON, unsigned or badly signed) is UNKNOWN.
"""
from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import parse_qsl

from chalicelib.channels.base import (
    ChannelResult,
    ChannelState,
    HttpReply,
    NativeOrderRequest,
    NotificationRejected,
    PaymentNotice,
    RefundRequest,
    ScanPayRequest,
    TradeStatus,
)
from chalicelib.domain.clock import BEIJING

log = logging.getLogger(__name__)

REQUIRED_SETTINGS = ("app_id", "app_private_key", "alipay_public_key", "seller_id")
SECRET_SETTINGS = ("app_private_key", "app_auth_token")
GATEWAY_PATH = "/alipay/gateway.do"
BEIJING_FORMAT = "%Y-%m-%d %H:%M:%S"

SUCCESS_CODE = "10000"
WAITING_CODE = "10003"  # alipay.trade.pay: the consumer is confirming on the phone
UNKNOWN_CODE = "20000"  # isp.unknow-error: Alipay does not know either; query
BUSINESS_FAILED = "40004"
# Signed refusals at the gateway: nothing was processed.
REFUSED_CODES = frozenset({"20001", "40001", "40002", "40006"})
# 40004 sub codes after which Alipay's documentation says to query rather than give up.
AMBIGUOUS_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "ACQ.TRADE_HAS_SUCCESS"})
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"

PAID_STATUSES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
UNPAID_STATUSES = frozenset({"WAIT_BUYER_PAY", "TRADE_CLOSED"})

# Alipay's Price type: yuan with at most two decimals, ASCII digits only (`\d` would take "١٢").
_YUAN = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")
_MAX_NOTIFICATION_FIELDS = 100


# ---------------------------------------------------------------------------- money and time


def yuan_to_fen(text: object) -> int:
    """Alipay's "12.50" as 1250, exactly: rejects anything but digits with up to two decimals."""
    if not isinstance(text, str) or not _YUAN.fullmatch(text):
        raise ValueError(f"not a yuan amount: {text!r}")
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0") or "0")


def fen_to_yuan(amount_fen: int) -> str:
    """1250 as "12.50" (integer arithmetic only)."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen < 0:
        raise ValueError(f"not an amount in fen: {amount_fen!r}")
    whole, fen = divmod(amount_fen, 100)
    return f"{whole}.{fen:02d}"


def beijing_text(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, BEIJING).strftime(BEIJING_FORMAT)


def beijing_unix(text: object) -> float:
    if not isinstance(text, str):
        raise ValueError(f"not a Beijing time: {text!r}")
    return datetime.strptime(text, BEIJING_FORMAT).replace(tzinfo=BEIJING).timestamp()


# ---------------------------------------------------------------------------- the SDK client


class _BeijingTimestamp:
    """Mixed in before the SDK's class: the common `timestamp` parameter in Beijing time.

    BaseAliPay.build_body uses datetime.now() (process local time); Alipay reads it as Beijing time.
    """

    _clock: Callable[[], float] = time.time

    def build_body(self, *args: Any, **kwargs: Any) -> dict:
        data = super().build_body(*args, **kwargs)  # type: ignore[misc]
        data["timestamp"] = beijing_text(self._clock())
        return data


def _key_material(text: str) -> str | bytes:
    """PEM as given; Alipay's console hands out bare base64, which the SDK reads as DER."""
    if "-----BEGIN" in text:
        return text
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error:
        raise ValueError("an Alipay key is neither PEM nor base64") from None


def sdk_client(settings: Mapping[str, str], gateway: str | None, timeout_s: float,
               clock: Callable[[], float] = time.time) -> Any:
    """python-alipay-sdk's client for these settings, stamping Beijing time (also for bill downloads)."""
    from alipay import AliPay, ISVAliPay  # lazily: cold starts that do not pay need no crypto
    from alipay.utils import AliPayConfig

    keys = dict(
        appid=settings["app_id"],
        app_private_key_string=_key_material(settings["app_private_key"]),
        alipay_public_key_string=_key_material(settings["alipay_public_key"]),
        sign_type="RSA2",
    )
    token = settings.get("app_auth_token") or None
    if token:
        client = type("BeijingISVAliPay", (_BeijingTimestamp, ISVAliPay), {})(app_auth_token=token, **keys)
    else:
        client = type("BeijingAliPay", (_BeijingTimestamp, AliPay), {})(**keys)
    # ISVAliPay.__init__ takes no config, so the timeout is set the same way for both.
    client._config = AliPayConfig(timeout=timeout_s)
    client._clock = clock
    if gateway:
        client._gateway = gateway.rstrip("/") + GATEWAY_PATH
    return client


# ---------------------------------------------------------------------------- answers


class _NoAnswer(Exception):
    """No answer we can act on: the capability answers UNKNOWN."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class _Answer:
    """A verified `<method>_response` node."""

    api: str
    body: Mapping[str, Any]

    @property
    def code(self) -> str:
        return str(self.body.get("code", ""))

    @property
    def sub_code(self) -> str:
        return str(self.body.get("sub_code", ""))

    @property
    def message(self) -> str:
        """sub_msg for logs and the console, minus the signed string Alipay echoes on isv.invalid-signature
        (it holds every request parameter, app_auth_token included)."""
        text = str(self.body.get("sub_msg") or self.body.get("msg") or "")
        return text.split("网关生成的验签字符串")[0].rstrip("，,")[:200]

    def text(self, name: str) -> str:
        value = self.body.get(name)
        if not isinstance(value, str) or not value:
            raise _NoAnswer(f"{self.api}: answer without {name}")
        return value

    def fen(self, name: str) -> int:
        try:
            return yuan_to_fen(self.body.get(name))
        except ValueError:
            raise _NoAnswer(f"{self.api}: unreadable {name}") from None

    def time(self, name: str) -> float | None:
        try:
            return beijing_unix(self.body.get(name))
        except ValueError:
            return None


def _refusal(answer: _Answer) -> ChannelResult:
    """A non-10000 answer: FAIL when Alipay clearly refused, UNKNOWN when the outcome is open."""
    code = answer.sub_code or answer.code
    refused = (answer.code == BUSINESS_FAILED and answer.sub_code not in AMBIGUOUS_SUB_CODES) or (
        answer.code in REFUSED_CODES
    )
    if refused:
        return ChannelResult(ChannelState.FAIL, code=code, message=answer.message)
    return ChannelResult(ChannelState.UNKNOWN, TradeStatus.UNKNOWN, code=code, message=answer.message)


def _sdk_error_code(error: Exception) -> str:
    """The code inside an unsigned error answer (the SDK keeps the raw text name-mangled)."""
    raw = getattr(error, "_AliPayException__message", "")
    match = re.search(r'"sub_code"\s*:\s*"([^"]+)"', raw) or re.search(r'"code"\s*:\s*"([^"]+)"', raw)
    return match.group(1) if match else ""


_Method = TypeVar("_Method", bound=Callable[..., ChannelResult])


def _unknown_without_answer(method: _Method) -> _Method:
    @functools.wraps(method)
    def wrapper(self: "AlipayChannel", *args: Any, **kwargs: Any) -> ChannelResult:
        try:
            return method(self, *args, **kwargs)
        except _NoAnswer as error:
            log.warning("alipay: no usable answer (%s) %s", error.code, error.message)
            return ChannelResult(ChannelState.UNKNOWN, TradeStatus.UNKNOWN, code=error.code, message=error.message)

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------- the channel


class AlipayChannel:
    name = "alipay"
    wallet = "alipay"

    def __init__(self, settings: Mapping[str, str], gateway: str | None = None, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        missing = [key for key in REQUIRED_SETTINGS if not settings.get(key)]
        if missing:
            raise ValueError(f"alipay settings miss {', '.join(missing)}")
        self.app_id = str(settings["app_id"])
        self.seller_id = str(settings["seller_id"])
        self._sdk = sdk_client(settings, gateway, timeout_s, clock)
        from alipay.exceptions import AliPayException, AliPayValidationError

        self._unsigned_error = AliPayException
        self._bad_signature = AliPayValidationError

    def __repr__(self) -> str:  # never the keys
        return f"AlipayChannel(app_id={self.app_id!r}, seller_id={self.seller_id!r})"

    # -- calls

    def _call(self, api: str, invoke: Callable[[], Any]) -> _Answer:
        try:
            body = invoke()
        except self._bad_signature:
            raise _NoAnswer(f"{api}: the answer's signature did not verify", "SIGN_MISMATCH") from None
        except self._unsigned_error as error:
            raise _NoAnswer(f"{api}: unsigned error answer", _sdk_error_code(error)) from None
        except Exception as error:  # timeout, refused, 5xx (HTTPError), non-JSON: outcome unknown
            raise _NoAnswer(f"{api}: {type(error).__name__}", "NO_ANSWER") from None
        if not isinstance(body, dict):
            raise _NoAnswer(f"{api}: answer is not an object")
        answer = _Answer(api, body)
        if answer.code != SUCCESS_CODE:
            log.info("alipay %s answered %s %s", api, answer.code, answer.sub_code)
        return answer

    def _paid(self, answer: _Answer, time_field: str) -> ChannelResult:
        return ChannelResult(
            ChannelState.SUCCESS, TradeStatus.PAID, trade_no=answer.text("trade_no"),
            amount_fen=answer.fen("total_amount"), paid_at=answer.time(time_field),
        )

    # -- capabilities

    @_unknown_without_answer
    def create_native_qr(self, request: NativeOrderRequest) -> ChannelResult:
        """alipay.trade.precreate. Alipay creates the trade only when a consumer scans the QR."""
        total, expire = fen_to_yuan(request.amount_fen), beijing_text(request.expires_at)  # our bugs raise
        answer = self._call("alipay.trade.precreate", lambda: self._sdk.api_alipay_trade_precreate(
            subject=request.description, out_trade_no=request.out_trade_no, total_amount=total,
            notify_url=request.notify_url or None, time_expire=expire,
        ))
        if answer.code != SUCCESS_CODE:
            return _refusal(answer)
        return ChannelResult(ChannelState.SUCCESS, TradeStatus.NOT_PAID, qr=answer.text("qr_code"))

    @_unknown_without_answer
    def scan_pay(self, request: ScanPayRequest) -> ChannelResult:
        total = fen_to_yuan(request.amount_fen)
        answer = self._call("alipay.trade.pay", lambda: self._sdk.api_alipay_trade_pay(
            out_trade_no=request.out_trade_no, scene="bar_code", auth_code=request.auth_code,
            subject=request.description, total_amount=total,
        ))
        if answer.code == SUCCESS_CODE:
            return self._paid(answer, "gmt_payment")
        if answer.code == WAITING_CODE:
            return ChannelResult(
                ChannelState.UNKNOWN, TradeStatus.USER_PAYING, trade_no=str(answer.body.get("trade_no") or "") or None,
                code=WAITING_CODE, message="the consumer is confirming the payment: query",
            )
        return _refusal(answer)

    @_unknown_without_answer
    def query(self, out_trade_no: str) -> ChannelResult:
        """NOT_FOUND also covers a precreated QR nobody has scanned yet: Alipay has no trade then."""
        answer = self._call("alipay.trade.query", lambda: self._sdk.api_alipay_trade_query(out_trade_no=out_trade_no))
        if answer.code != SUCCESS_CODE:
            if answer.sub_code == TRADE_NOT_EXIST:
                return ChannelResult(ChannelState.SUCCESS, TradeStatus.NOT_FOUND, code=TRADE_NOT_EXIST)
            return _refusal(answer)
        status = answer.body.get("trade_status")
        if status in PAID_STATUSES:
            return self._paid(answer, "send_pay_date")
        trade_no = str(answer.body.get("trade_no") or "") or None
        if status == "WAIT_BUYER_PAY":
            return ChannelResult(ChannelState.SUCCESS, TradeStatus.NOT_PAID, trade_no=trade_no)
        if status == "TRADE_CLOSED":
            # Closed after being paid means refunded in full; Alipay keeps the payment date then.
            paid_at = answer.time("send_pay_date")
            closed = TradeStatus.REFUNDED if paid_at else TradeStatus.CLOSED
            return ChannelResult(ChannelState.SUCCESS, closed, trade_no=trade_no, paid_at=paid_at)
        raise _NoAnswer(f"alipay.trade.query: unexpected trade_status {status!r}")

    @_unknown_without_answer
    def close(self, out_trade_no: str) -> ChannelResult:
        """A paid trade answers FAIL with ACQ.TRADE_STATUS_ERROR: query it and keep the payment.

        An unscanned precreate answers SUCCESS with NOT_FOUND: Alipay has nothing to close, and the
        QR stays payable until the time_expire we set; `cancel` is the call that voids it earlier.
        """
        answer = self._call("alipay.trade.close", lambda: self._sdk.api_alipay_trade_close(out_trade_no=out_trade_no))
        if answer.code == SUCCESS_CODE:
            return ChannelResult(ChannelState.SUCCESS, TradeStatus.CLOSED, trade_no=answer.body.get("trade_no") or None)
        if answer.sub_code == TRADE_NOT_EXIST:
            return ChannelResult(ChannelState.SUCCESS, TradeStatus.NOT_FOUND, code=TRADE_NOT_EXIST,
                                 message="no trade yet: the QR stays payable until its time_expire")
        return _refusal(answer)

    @_unknown_without_answer
    def cancel(self, out_trade_no: str) -> ChannelResult:
        """alipay.trade.cancel: closes an unpaid trade, refunds a paid one (same day only)."""
        answer = self._call("alipay.trade.cancel", lambda: self._sdk.api_alipay_trade_cancel(out_trade_no=out_trade_no))
        if answer.body.get("retry_flag") == "Y":  # Alipay asks for the same cancel again
            return ChannelResult(ChannelState.UNKNOWN, TradeStatus.UNKNOWN, code=answer.sub_code or answer.code,
                                 message="cancel must be retried")
        if answer.code != SUCCESS_CODE:
            return _refusal(answer)
        status = TradeStatus.REFUNDED if answer.body.get("action") == "refund" else TradeStatus.CLOSED
        return ChannelResult(ChannelState.SUCCESS, status, trade_no=answer.body.get("trade_no") or None)

    @_unknown_without_answer
    def refund(self, request: RefundRequest) -> ChannelResult:
        """out_request_no is our out_refund_no: a retry after a timeout refunds once. Code 10000 only says
        the call went through: fund_change Y is money that moved now (REFUNDED); N is a retry of a refund
        made before, or one Alipay has not finished, so it is answered as accepted (SUCCESS without
        REFUNDED) and the caller asks alipay.trade.fastpay.refund.query for REFUND_SUCCESS."""
        amount = fen_to_yuan(request.refund_fen)
        extra = {"refund_reason": request.reason} if request.reason else {}
        answer = self._call("alipay.trade.refund", lambda: self._sdk.api_alipay_trade_refund(
            refund_amount=amount, out_trade_no=request.out_trade_no, out_request_no=request.out_refund_no, **extra,
        ))
        if answer.code != SUCCESS_CODE:
            return _refusal(answer)
        fund_change = str(answer.body.get("fund_change", ""))
        return ChannelResult(ChannelState.SUCCESS, TradeStatus.REFUNDED if fund_change == "Y" else None,
                             trade_no=answer.body.get("trade_no") or None, message=f"fund_change={fund_change}")

    @_unknown_without_answer
    def query_refund(self, out_trade_no: str, out_refund_no: str) -> ChannelResult:
        """alipay.trade.fastpay.refund.query: done only with refund_status REFUND_SUCCESS. Alipay answers
        10000 for a refund it does not know (without refund fields: NOT_FOUND, which by Alipay's rule is
        sent again under the same out_request_no) and lists one it has not finished without
        refund_status (UNKNOWN: asked again later)."""
        answer = self._call("alipay.trade.fastpay.refund.query", lambda: self._sdk.api_alipay_trade_fastpay_refund_query(
            out_refund_no, out_trade_no=out_trade_no))
        if answer.code != SUCCESS_CODE:
            if answer.sub_code == TRADE_NOT_EXIST:
                return ChannelResult(ChannelState.FAIL, TradeStatus.NOT_FOUND, code=TRADE_NOT_EXIST)
            return ChannelResult(ChannelState.UNKNOWN, code=answer.sub_code or answer.code, message=answer.message)
        if answer.body.get("out_request_no") != out_refund_no or not answer.body.get("refund_amount"):
            return ChannelResult(ChannelState.FAIL, TradeStatus.NOT_FOUND, code="REFUND_NOT_EXIST")
        status = str(answer.body.get("refund_status") or "")
        if status != "REFUND_SUCCESS":
            return ChannelResult(ChannelState.UNKNOWN, code=status or "REFUND_NOT_CONFIRMED")
        return ChannelResult(ChannelState.SUCCESS, TradeStatus.REFUNDED, trade_no=answer.text("trade_no") or None,
                             amount_fen=answer.fen("refund_amount"), code=status)

    # -- notifications

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """Signature first (RSA2 over the sorted fields minus sign and sign_type), then the fields.

        A genuine notification for anything but a payment (WAIT_BUYER_PAY, TRADE_CLOSED) comes back
        with paid=False and paid_at 0.0, so the caller acknowledges it without applying anything.
        """
        fields = _form_fields(body)
        self._verify(fields)
        status = fields.get("trade_status", "")
        if status not in PAID_STATUSES | UNPAID_STATUSES:
            raise NotificationRejected(f"unknown trade_status {status!r}")
        if fields.get("notify_type") != "trade_status_sync":
            raise NotificationRejected("notify_type is not trade_status_sync")
        if fields.get("app_id") != self.app_id:
            raise NotificationRejected("app_id is not this merchant's app")
        if fields.get("seller_id") != self.seller_id:
            raise NotificationRejected("seller_id is not this merchant")
        return PaymentNotice(
            out_trade_no=_required(fields, "out_trade_no"),
            trade_no=_required(fields, "trade_no"),
            amount_fen=_amount(fields.get("total_amount")),
            paid_at=_payment_time(fields.get("gmt_payment")) if status in PAID_STATUSES else 0.0,
            merchant_ref=self.seller_id,
            paid=status in PAID_STATUSES,
        )

    def _verify(self, fields: dict[str, str]) -> None:
        signature = fields.get("sign", "")
        if not signature:
            raise NotificationRejected("unsigned notification")
        if fields.get("sign_type") != "RSA2":
            raise NotificationRejected("sign_type is not RSA2")
        # Alipay signs the non-empty fields except sign and sign_type.
        signed = {k: v for k, v in fields.items() if k not in ("sign", "sign_type") and v != ""}
        try:
            # The SDK decodes with base64.decodebytes, which skips junk characters: be strict first.
            base64.b64decode(signature, validate=True)
            genuine = self._sdk.verify(signed, signature)
        except Exception:  # malformed base64 and the like: not Alipay's signature either
            genuine = False
        if not genuine:
            raise NotificationRejected("bad signature")

    def ack(self) -> HttpReply:
        return HttpReply(200, "success", {"Content-Type": "text/plain"})

    def nack(self, reason: str) -> HttpReply:
        # Anything but "success" makes Alipay retry; the reason stays in our logs, not in the answer.
        return HttpReply(200, "failure", {"Content-Type": "text/plain"})


def _form_fields(body: bytes) -> dict[str, str]:
    """The urlencoded body as one value per name: duplicates or non-UTF-8 are not Alipay's."""
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                          encoding="utf-8", errors="strict", max_num_fields=_MAX_NOTIFICATION_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise NotificationRejected("body is not a UTF-8 urlencoded form") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise NotificationRejected("a field appears twice")
    if fields.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise NotificationRejected("charset is not utf-8")
    return fields


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise NotificationRejected(f"{name} missing")
    return value


def _amount(text: str | None) -> int:
    try:
        return yuan_to_fen(text)
    except ValueError:
        raise NotificationRejected("total_amount is not a yuan amount") from None


def _payment_time(text: str | None) -> float:
    try:
        return beijing_unix(text)
    except ValueError:
        raise NotificationRejected("gmt_payment is not a Beijing time") from None


def build(settings: dict, gateway: str | None = None, timeout_s: float = 5.0,
          clock: Callable[[], float] = time.time) -> AlipayChannel:
    return AlipayChannel(settings, gateway=gateway, timeout_s=timeout_s, clock=clock)
