"""WeChat Pay API v2 through wechatpy, for direct merchants and for the bank's sub-merchants.

Settings (`build(settings, gateway, timeout_s)`; SECRET_SETTINGS are sealed with KMS at rest):

    appid       app id bound to mch_id (service-provider mode: the bank's app id)
    mch_id      merchant number (service-provider mode: the bank's, which is the service provider)
    api_key     API v2 key, 32 characters: signs requests, answers and notifications     [secret]
    sign_type   "MD5" (default) or "HMAC-SHA256": how our requests are signed
    sub_mch_id  optional: the merchant's number under the bank (服务商/ISV mode)
    sub_appid   optional: the merchant's own app id in service-provider mode
    mch_cert, mch_key   optional PEM text: the TLS client certificate and key that the /secapi/
                endpoints (reverse, refund) require                                  [secret]

`gateway` is the payment platforms' base URL shared by all channels (CHANNEL_GATEWAY): None in
production, where the SDK keeps WeChat's own https://api.mch.weixin.qq.com/; locally the sandbox
root, below which WeChat Pay v2 lives at SANDBOX_PREFIX, so the SDK base URL becomes
`{gateway}/wxpay/`. It is set on this client instance only (wechatpy reads `self.API_BASE_URL`),
never on the WeChatPay class, so other clients in the process are not redirected.

The client certificate: requests only takes file paths, so the PEM text is written once to 0600
files in a private 0700 temp directory (Lambda's /tmp is private to the function). The sandbox is
plain HTTP on loopback, where no TLS handshake happens and no certificate is needed; against an
https gateway, reverse and refund without a certificate answer FAIL CERT_MISSING without calling.

Answers: SUCCESS, FAIL or UNKNOWN (base.py). Anything the SDK or requests raises (timeouts,
refused connections, 5xx, a body that is not XML) and any answer whose signature does not verify
is UNKNOWN. return_code FAIL (the platform refused the request itself: signature, format,
merchant) is FAIL with code RETURN_FAIL. Business errors are FAIL only for the err_codes listed in
DEFINITE_CODES, whose meaning is that nothing happened; every other code is UNKNOWN, to be queried.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping

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
    unknown,
)
from chalicelib.channels.wechat_v3 import TradeBill  # the same shape for both WeChat APIs' bills

log = logging.getLogger(__name__)

WECHAT_GATEWAY = "https://api.mch.weixin.qq.com/"
SANDBOX_PREFIX = "/wxpay"  # where the sandbox serves WeChat Pay v2 (and v3) below its root
SECRET_SETTINGS = frozenset({"api_key", "mch_cert", "mch_key"})
MD5, HMAC_SHA256 = "MD5", "HMAC-SHA256"
SIGN_TYPES = (MD5, HMAC_SHA256)
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China: a fixed offset is exact
MAX_NOTIFICATION_BYTES = 64 * 1024  # a real notification is under 2 KB
NO_BILL_ANSWERS = ("No Bill Exist", "20002")  # downloadbill: no trades that day (return_msg, err_code)

ACK_XML = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
XML_HEADERS = {"Content-Type": "text/xml"}

TRADE_STATES = {
    "SUCCESS": TradeStatus.PAID,
    "REFUND": TradeStatus.REFUNDED,
    "NOTPAY": TradeStatus.NOT_PAID,
    "CLOSED": TradeStatus.CLOSED,
    "REVOKED": TradeStatus.CLOSED,
    "PAYERROR": TradeStatus.CLOSED,
    "USERPAYING": TradeStatus.USER_PAYING,
    "ACCEPT": TradeStatus.USER_PAYING,  # received, waiting for the debit: still open
}

# err_codes whose documented meaning is "nothing happened": the call failed and may not be retried
# as is. Everything else (SYSTEMERROR, BANKERROR, BIZERR_NEED_RETRY, codes we have never seen) is
# UNKNOWN: the trade may have moved, so the caller queries.
DEFINITE_CODES = frozenset({
    "AUTHCODEEXPIRE", "AUTH_CODE_ERROR", "AUTH_CODE_INVALID", "NOTENOUGH", "NOTSUPORTCARD", "BUYER_MISMATCH",
    "TRADE_ERROR", "ORDERCLOSED", "ORDERREVERSED", "ORDERNOTEXIST", "ORDERPAID", "USERPAYING",
    "PARAM_ERROR", "LACK_PARAMS", "NOAUTH", "NO_AUTH", "SIGNERROR", "NOT_UTF8", "XML_FORMAT_ERROR",
    "REQUIRE_POST_METHOD", "POST_DATA_EMPTY", "APPID_NOT_EXIST", "MCHID_NOT_EXIST", "APPID_MCHID_NOT_MATCH",
    "INVALID_REQUEST", "TRADE_OVERDUE", "REVERSE_EXPIRE", "INVALID_TRANSACTIONID", "ERROR",
    "USER_ACCOUNT_ABNORMAL", "TRADE_STATE_ERROR", "REFUNDNOTEXIST",
})


_DEFAULTS = {"appid": "", "mch_id": "", "api_key": "", "sign_type": MD5, "sub_mch_id": "", "sub_appid": "",
             "mch_cert": "", "mch_key": ""}


@dataclass(frozen=True)
class WeChatV2Settings:
    appid: str
    mch_id: str
    api_key: str = field(repr=False)
    sign_type: str = MD5
    sub_mch_id: str = ""
    sub_appid: str = ""
    mch_cert: str = field(default="", repr=False)
    mch_key: str = field(default="", repr=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "WeChatV2Settings":
        missing = [name for name in ("appid", "mch_id", "api_key") if not raw.get(name)]
        if missing:
            raise ValueError(f"wechat_v2 settings lack {', '.join(missing)}")
        settings = cls(**{name: str(raw.get(name) or default) for name, default in _DEFAULTS.items()})
        if settings.sign_type not in SIGN_TYPES:
            raise ValueError(f"wechat_v2 sign_type must be one of {SIGN_TYPES}")
        if bool(settings.mch_cert) != bool(settings.mch_key):
            raise ValueError("wechat_v2 mch_cert and mch_key go together")
        return settings


def build(settings: dict, gateway: str | None = None, timeout_s: float = 5.0,
          clock: Callable[[], float] = time.time) -> "WeChatV2Channel":
    return WeChatV2Channel(WeChatV2Settings.from_dict(settings), gateway, timeout_s, clock)


def jsapi_params(settings: WeChatV2Settings, prepay_id: str, timestamp: float,
                 nonce_str: str | None = None) -> dict[str, str]:
    """The signed parameters a page passes to WeixinJSBridge getBrandWCPayRequest: appId (sub_appid
    in service-provider mode), timeStamp, nonceStr, package=prepay_id=..., signType MD5, paySign.
    Pure (no network): wechatpy's own JSAPI signer over the merchant's api_key."""
    from wechatpy.pay.api.jsapi import WeChatJSAPI

    client = _client_class()(appid=settings.appid, api_key=settings.api_key, mch_id=settings.mch_id,
                             sub_mch_id=settings.sub_mch_id or None, sub_appid=settings.sub_appid or None)
    params = WeChatJSAPI(client).get_jsapi_params(prepay_id, timestamp=str(int(timestamp)), nonce_str=nonce_str)
    return {name: str(value) for name, value in params.items()}


# --- the SDK, imported lazily ---------------------------------------------------------------

@functools.cache
def _client_class() -> type:
    from wechatpy.pay import WeChatPay

    class SignTypedWeChatPay(WeChatPay):
        """wechatpy signs with HMAC-SHA256 only when the request data names sign_type, and only its
        unifiedorder lets callers add fields; this client names it on every request it sends."""

        sign_type = MD5

        def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
            data = kwargs.get("data")
            if isinstance(data, dict) and self.sign_type != MD5:
                data.setdefault("sign_type", self.sign_type)
            return super()._request(method, url_or_endpoint, **kwargs)

    # wechatpy logs, at DEBUG, the string it signs, which ends with "&key=<api_key>".
    logging.getLogger("wechatpy.pay.utils").addFilter(_drop_signature_strings)
    return SignTypedWeChatPay


def _drop_signature_strings(record: logging.LogRecord) -> bool:
    return "Calculate Signature" not in str(record.msg)


def _signature(fields: Mapping[str, str], sign_type: str, api_key: str) -> str:
    """wechatpy computes both sign types; picking one by sign_type is ours."""
    from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

    calculate = calculate_signature_hmac if sign_type == HMAC_SHA256 else calculate_signature
    return calculate({k: v for k, v in fields.items() if k != "sign"}, api_key)


def _signature_ok(fields: Mapping[str, str], sign_type: str, api_key: str) -> bool:
    expected = _signature(fields, sign_type, api_key).encode("ascii")
    return hmac.compare_digest(expected, fields.get("sign", "").encode("utf-8"))


@functools.cache
def _private_dir() -> str:
    return tempfile.mkdtemp(prefix="wxpay-cert-")  # mode 0700


def _pem_file(pem: str) -> str:
    """A 0600 file holding `pem`, named by its hash so that rebuilding a channel reuses it."""
    path = os.path.join(_private_dir(), hashlib.sha256(pem.encode()).hexdigest()[:32] + ".pem")
    if not os.path.exists(path):
        partial = f"{path}.{os.getpid()}.{time.monotonic_ns()}"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(pem)
        os.replace(partial, path)  # atomic: a concurrent reader sees the whole file or none
    return path


# --- safe XML ---------------------------------------------------------------------------------

class _BadXml(ValueError):
    pass


def xml_fields(body: bytes) -> dict[str, str]:
    """A flat <xml> document as a dict. defusedxml with DTDs forbidden: an external entity or an
    entity bomb is refused before any entity is declared, never resolved or expanded. Nested or
    repeated fields are refused too, so that what was signed is exactly what we read."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(body, forbid_dtd=True)
    except DefusedXmlException as error:
        raise _BadXml(f"XML refused: {type(error).__name__}") from None
    except ParseError:
        raise _BadXml("malformed XML") from None
    if root.tag != "xml":
        raise _BadXml("root element is not <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if len(child) or child.tag in fields:
            raise _BadXml(f"nested or repeated field {str(child.tag)[:32]}")
        fields[child.tag] = child.text or ""
    return fields


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


# --- time and money at the edge -------------------------------------------------------------

def _beijing(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, BEIJING)


def _parse_time_end(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()
    except ValueError:
        return None


def _fen(text: str | None) -> int | None:
    """WeChat sends amounts as integer fen; anything else is not an amount."""
    return int(text) if text and text.isascii() and text.isdigit() else None


# --- answers ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Answer:
    """A return_code SUCCESS answer whose signature verified."""

    fields: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.fields.get("result_code") == "SUCCESS"

    @property
    def code(self) -> str:
        return self.fields.get("err_code", "")

    @property
    def message(self) -> str:
        return self.fields.get("err_code_des") or self.fields.get("return_msg") or ""

    def result(self, state: ChannelState, **kwargs: Any) -> ChannelResult:
        return ChannelResult(state, code=kwargs.pop("code", self.code), message=self.message, **kwargs)

    def error(self, **kwargs: Any) -> ChannelResult:
        """FAIL for a code that means nothing happened, UNKNOWN for the rest."""
        return self.result(ChannelState.FAIL if self.code in DEFINITE_CODES else ChannelState.UNKNOWN, **kwargs)


def _flat(data: Mapping[str, Any]) -> dict[str, str] | None:
    """xmltodict's dict as text fields; None when a field is not plain text."""
    fields = {}
    for name, value in data.items():
        if value is not None and not isinstance(value, str):
            return None
        fields[name] = value or ""
    return fields


def _created(answer: "_Answer | ChannelResult", name: str, result_field: str) -> ChannelResult:
    """A unifiedorder outcome: SUCCESS carries the answer's `name` (code_url, prepay_id) as
    ChannelResult.`result_field`; a SUCCESS without it is UNKNOWN (the trade may exist)."""
    if not isinstance(answer, _Answer):
        return answer
    if not answer.ok:
        return answer.error()
    value = answer.fields.get(name, "")
    return answer.result(ChannelState.SUCCESS, **{result_field: value}) if value else unknown(f"no {name}")


class WeChatV2Channel:
    name = "wechat_v2"
    wallet = "wechat"

    def __init__(self, settings: WeChatV2Settings, gateway: str | None, timeout_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock  # for time_start: Beijing time from our clock, not from a tz database lookup
        self._gateway = gateway.rstrip("/") + SANDBOX_PREFIX + "/" if gateway else WECHAT_GATEWAY
        cert = (_pem_file(settings.mch_cert), _pem_file(settings.mch_key)) if settings.mch_cert else (None, None)
        client = _client_class()(
            appid=settings.appid, api_key=settings.api_key, mch_id=settings.mch_id,
            sub_mch_id=settings.sub_mch_id or None, sub_appid=settings.sub_appid or None,
            mch_cert=cert[0], mch_key=cert[1], timeout=timeout_s,
        )
        client.API_BASE_URL = self._gateway  # this instance only
        client.sign_type = settings.sign_type
        self._client = client

    # --- capabilities ---------------------------------------------------------------------

    def create_native_qr(self, request: NativeOrderRequest) -> ChannelResult:
        answer = self._call(lambda: self._client.order.create(
            trade_type="NATIVE", body=request.description, total_fee=request.amount_fen,
            notify_url=request.notify_url, client_ip=request.client_ip, out_trade_no=request.out_trade_no,
            product_id=request.out_trade_no, time_start=_beijing(self._clock()),
            time_expire=_beijing(request.expires_at),
        ))
        return _created(answer, "code_url", "qr")

    def create_jsapi(self, out_trade_no: str, amount_fen: int, description: str, notify_url: str, openid: str,
                     expires_at: float, client_ip: str = "127.0.0.1") -> ChannelResult:
        """Prepay for a payer inside WeChat (JSAPI): `openid` is the payer's id under our app id
        (sub_appid in service-provider mode, sent as sub_openid). SUCCESS carries prepay_id, which
        jsapi_params signs for the page; the payment itself is confirmed by the notification."""
        payer = {"sub_user_id": openid} if self._settings.sub_appid else {"user_id": openid}
        answer = self._call(lambda: self._client.order.create(
            trade_type="JSAPI", body=description, total_fee=amount_fen, notify_url=notify_url,
            client_ip=client_ip, out_trade_no=out_trade_no, time_start=_beijing(self._clock()),
            time_expire=_beijing(expires_at), **payer,
        ))
        return _created(answer, "prepay_id", "prepay_id")

    def jsapi_params(self, prepay_id: str, timestamp: float, nonce_str: str | None = None) -> dict[str, str]:
        return jsapi_params(self._settings, prepay_id, timestamp, nonce_str)

    def scan_pay(self, request: ScanPayRequest) -> ChannelResult:
        answer = self._call(lambda: self._client.micropay.create(
            body=request.description, total_fee=request.amount_fen, auth_code=request.auth_code,
            client_ip=request.client_ip, out_trade_no=request.out_trade_no,
        ))
        if not isinstance(answer, _Answer):  # a payment whose outcome is unknown has an unknown status
            unknown_outcome = answer.state is ChannelState.UNKNOWN
            return replace(answer, trade_status=TradeStatus.UNKNOWN) if unknown_outcome else answer
        if answer.ok:
            return self._trade_result(answer, TradeStatus.PAID)
        if answer.code == "USERPAYING":  # the consumer is typing a password: query until it ends
            return answer.result(ChannelState.UNKNOWN, trade_status=TradeStatus.USER_PAYING)
        if answer.code in ("ORDERPAID", "OUT_TRADE_NO_USED"):  # this out_trade_no has a history: query it
            return answer.result(ChannelState.UNKNOWN, trade_status=TradeStatus.UNKNOWN)
        failed = answer.code in DEFINITE_CODES
        return answer.error(trade_status=None if failed else TradeStatus.UNKNOWN)

    def query(self, out_trade_no: str) -> ChannelResult:
        answer = self._call(lambda: self._client.order.query(out_trade_no=out_trade_no))
        if not isinstance(answer, _Answer):
            return answer
        if answer.ok:
            status = TRADE_STATES.get(answer.fields.get("trade_state", ""))
            if status is None:
                return unknown(f"unknown trade_state {answer.fields.get('trade_state', '')[:32]}")
            return self._trade_result(answer, status)
        if answer.code == "ORDERNOTEXIST":
            return answer.result(ChannelState.SUCCESS, trade_status=TradeStatus.NOT_FOUND)
        return answer.error()

    def close(self, out_trade_no: str) -> ChannelResult:
        answer = self._call(lambda: self._client.order.close(out_trade_no))
        if not isinstance(answer, _Answer):
            return answer
        if answer.ok or answer.code == "ORDERCLOSED":  # closed already is what we wanted
            return answer.result(ChannelState.SUCCESS)
        return answer.error()  # ORDERPAID is FAIL with code ORDERPAID: the caller learns it was paid

    def cancel(self, out_trade_no: str) -> ChannelResult:
        if not self._has_cert():
            return ChannelResult(ChannelState.FAIL, code="CERT_MISSING", message="reverse needs the client certificate")
        answer = self._call(lambda: self._client.order.reverse(out_trade_no=out_trade_no))
        if not isinstance(answer, _Answer):
            return answer
        if answer.fields.get("recall") == "Y":  # the platform asks for the reverse again
            return answer.result(ChannelState.UNKNOWN)
        return answer.result(ChannelState.SUCCESS) if answer.ok else answer.error()

    def refund(self, request: RefundRequest) -> ChannelResult:
        if not self._has_cert():
            return ChannelResult(ChannelState.FAIL, code="CERT_MISSING", message="refund needs the client certificate")
        answer = self._call(lambda: self._client.refund.apply(
            total_fee=request.total_fen, refund_fee=request.refund_fen, out_refund_no=request.out_refund_no,
            out_trade_no=request.out_trade_no, refund_desc=request.reason or None,
            notify_url=request.notify_url or None,
        ))
        if not isinstance(answer, _Answer):
            return answer
        if answer.ok:  # the refund is accepted; trade_no carries the platform's refund_id
            return answer.result(ChannelState.SUCCESS, trade_no=answer.fields.get("refund_id") or None,
                                 amount_fen=_fen(answer.fields.get("refund_fee")))
        return answer.error()

    def query_refund(self, out_trade_no: str, out_refund_no: str) -> ChannelResult:
        """refundquery by our out_refund_no: refund_status_0 SUCCESS, PROCESSING, REFUNDCLOSE or CHANGE."""
        answer = self._call(lambda: self._client.refund.query(out_refund_no=out_refund_no, out_trade_no=out_trade_no))
        if not isinstance(answer, _Answer):
            return answer
        if not answer.ok:
            if answer.code == "REFUNDNOTEXIST":
                return answer.result(ChannelState.FAIL, trade_status=TradeStatus.NOT_FOUND)
            return answer.error()
        fields = answer.fields
        index = next((n for n in range(int(fields.get("refund_count", "0") or 0))
                      if fields.get(f"out_refund_no_{n}") == out_refund_no), None)
        if index is None:
            return unknown("refundquery answered about other refunds")
        status = fields.get(f"refund_status_{index}", "")
        found = {"trade_no": fields.get(f"refund_id_{index}") or None, "amount_fen": _fen(fields.get(f"refund_fee_{index}")),
                 "code": status}
        if status == "SUCCESS":
            return answer.result(ChannelState.SUCCESS, trade_status=TradeStatus.REFUNDED, **found)
        if status in ("REFUNDCLOSE", "CHANGE"):  # closed, or the money could not reach the payer
            return answer.result(ChannelState.FAIL, **found)
        return answer.result(ChannelState.UNKNOWN, **found)  # PROCESSING

    # --- reconciliation (not part of PaymentChannel) ------------------------------------------

    def download_trade_bill(self, bill_date: date) -> TradeBill:
        """The ALL trade bill of one Beijing day as text (downloadbill, signed like every call); on a day
        without trades SUCCESS with no text and code NO_BILL; anything unreadable is UNKNOWN."""
        from wechatpy.exceptions import WeChatPayException

        try:
            text = self._client.tools.download_bill(bill_date, bill_type="ALL")
        except WeChatPayException as error:
            if error.return_msg in NO_BILL_ANSWERS or getattr(error, "errcode", "") in NO_BILL_ANSWERS:
                return TradeBill(ChannelState.SUCCESS, code="NO_BILL")
            return TradeBill(ChannelState.UNKNOWN, message=f"downloadbill: {error.return_msg or 'no answer'}")
        except Exception as error:  # a timeout or a broken connection: try again later
            return TradeBill(ChannelState.UNKNOWN, message=f"{type(error).__name__}: {error}")
        if not isinstance(text, str):
            return TradeBill(ChannelState.UNKNOWN, message="downloadbill answered XML, not a bill")
        return TradeBill(ChannelState.SUCCESS, text=text)

    # --- notifications --------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """Safe parse, then the signature (MD5 or HMAC-SHA256 as the notification's sign_type
        says), then return_code and our merchant's ids. The order itself is the caller's check."""
        if len(body) > MAX_NOTIFICATION_BYTES:
            raise NotificationRejected("notification too large")
        try:
            fields = xml_fields(body)
        except _BadXml as error:
            raise NotificationRejected(str(error)) from None
        self._verify(fields)
        self._check_merchant(fields)
        return self._notice(fields)

    def ack(self) -> HttpReply:
        return HttpReply(200, ACK_XML, dict(XML_HEADERS))

    def nack(self, reason: str) -> HttpReply:
        body = f"<xml><return_code>{_cdata('FAIL')}</return_code><return_msg>{_cdata(reason[:128])}</return_msg></xml>"
        return HttpReply(200, body, dict(XML_HEADERS))

    # --- internals ------------------------------------------------------------------------

    def _call(self, send: Callable[[], Any]) -> _Answer | ChannelResult:
        """One SDK call: an _Answer, or the ChannelResult that ends the capability here."""
        from wechatpy.exceptions import WeChatPayException

        try:
            data = send()
        except WeChatPayException as error:
            return self._refused(error)
        except Exception as error:  # timeouts, refused connections, SDK surprises: the outcome is unknown
            log.warning("wechat_v2 call failed: %s", type(error).__name__)
            return unknown(f"{type(error).__name__}: {str(error)[:200]}")
        fields = _flat(data) if isinstance(data, dict) else None
        if fields is None:
            return unknown("answer is not XML")
        return self._verified(fields)

    def _refused(self, error: Any) -> _Answer | ChannelResult:
        """wechatpy raises for any answer but SUCCESS/SUCCESS; read that answer ourselves."""
        response = getattr(error, "response", None)
        if error.return_code is None or response is None:  # HTTP error status
            status = getattr(response, "status_code", "?")
            return unknown(f"HTTP {status}", code=f"HTTP_{status}")
        try:
            fields = xml_fields(response.content)
        except _BadXml:
            return unknown("answer is not XML")
        return self._verified(fields)

    def _verified(self, fields: dict[str, str]) -> _Answer | ChannelResult:
        if fields.get("return_code") != "SUCCESS":
            if fields.get("return_code") == "FAIL":
                return ChannelResult(ChannelState.FAIL, code="RETURN_FAIL", message=fields.get("return_msg", ""))
            return unknown("answer without return_code")
        if not _signature_ok(fields, self._settings.sign_type, self._settings.api_key):
            return unknown("answer signature does not verify", code="BAD_SIGNATURE")
        return _Answer(fields)

    def _trade_result(self, answer: _Answer, status: TradeStatus) -> ChannelResult:
        fields = answer.fields
        return answer.result(
            ChannelState.SUCCESS, trade_status=status, trade_no=fields.get("transaction_id") or None,
            amount_fen=_fen(fields.get("total_fee")), paid_at=_parse_time_end(fields.get("time_end", "")),
        )

    def _has_cert(self) -> bool:
        """Plain HTTP (the sandbox on loopback) has no TLS handshake to present a certificate in."""
        return bool(self._settings.mch_cert) or not self._gateway.startswith("https:")

    def _verify(self, fields: dict[str, str]) -> None:
        sign_type = fields.get("sign_type") or MD5
        if sign_type not in SIGN_TYPES:
            raise NotificationRejected("unsupported sign_type")
        if not fields.get("sign"):
            raise NotificationRejected("signature missing")
        if not _signature_ok(fields, sign_type, self._settings.api_key):
            raise NotificationRejected("signature does not verify")

    def _check_merchant(self, fields: dict[str, str]) -> None:
        settings = self._settings
        if fields.get("return_code") != "SUCCESS":
            raise NotificationRejected("return_code is not SUCCESS")
        if fields.get("appid") != settings.appid:
            raise NotificationRejected("appid is not this merchant's")
        if fields.get("mch_id") != settings.mch_id:
            raise NotificationRejected("mch_id is not this merchant's")
        if fields.get("sub_mch_id", "") != settings.sub_mch_id:
            raise NotificationRejected("sub_mch_id is not this merchant's")
        if settings.sub_appid and fields.get("sub_appid", settings.sub_appid) != settings.sub_appid:
            raise NotificationRejected("sub_appid is not this merchant's")

    def _notice(self, fields: dict[str, str]) -> PaymentNotice:
        out_trade_no, amount_fen = fields.get("out_trade_no", ""), _fen(fields.get("total_fee"))
        if not out_trade_no or not amount_fen:
            raise NotificationRejected("out_trade_no or total_fee missing")
        paid = fields.get("result_code") == "SUCCESS"
        paid_at = _parse_time_end(fields.get("time_end", ""))
        if paid and (paid_at is None or not fields.get("transaction_id")):
            raise NotificationRejected("paid without transaction_id or time_end")
        return PaymentNotice(
            out_trade_no=out_trade_no, trade_no=fields.get("transaction_id", ""), amount_fen=amount_fen,
            paid_at=paid_at or 0.0, merchant_ref=fields["mch_id"], paid=paid,
        )
