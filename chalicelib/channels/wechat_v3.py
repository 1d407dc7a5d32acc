"""WeChat Pay APIv3 for a direct merchant, on wechatpayv3 2.0.4: NATIVE QR orders and code pay (付款码).

Settings taken by build(settings, gateway, timeout_s):
    appid, mchid, merchant_cert_serial    plain
    merchant_private_key (PEM)            SECRET: signs every request
    apiv3_key                             SECRET: decrypts notifications and downloaded certificates
    public_key (PEM), public_key_id       optional, together: "WeChat Pay public key" mode. Without them the
                                          channel is in platform-certificate mode: certificates are downloaded
                                          from /v3/certificates and decrypted with the APIv3 key.
    store_id                              optional: scene_info.store_info.out_id of code payments (default mchid)

`gateway` is the sandbox root (None in production): the SDK's `_gate_way` becomes `{gateway}/wxpay`, so
`/v3/pay/transactions/native` lands at `{gateway}/wxpay/v3/pay/transactions/native`.

Two adaptations of the SDK, both for 2.0.4 (pinned in requirements.txt; tests guard them):
  * Core.__init__ sets `_gate_way` to production and, in certificate mode, downloads the certificates
    before returning, so no caller could point it anywhere else first. `_LazyCertificateCore` skips that
    download; the SDK's own `_verify_signature` fetches certificates when it meets an unknown serial, i.e.
    on the first signed answer or notification. WeChatPay.__init__ builds its Core itself, so `_Client`
    stores the same six attributes around our Core instead.
  * Notifications are checked step by step rather than through `callback()`, which folds every failure
    into None: the SDK's `_verify_signature` (certificate or public key, by Wechatpay-Serial), then our
    timestamp window, then the SDK's `aes_decrypt`, then our merchant checks. Each rejection says why.

HTTP calls per operation: construction makes none. Public-key mode: every capability makes exactly one
call, parse_notification none. Certificate mode: the same, plus one GET /v3/certificates the first time
the client verifies anything (its first 2xx answer or notification) and again whenever WeChat signs with
a serial it does not hold yet (certificate rotation). Clients are shared per process by settings digest
(see _client_for), so a warm Lambda downloads certificates once per merchant, not once per request.
Answers that fail verification are UNKNOWN (the call may have taken effect). In public-key mode a
Wechatpay-Serial that is another PUB_KEY_ID is rejected at once; a certificate serial is left to the SDK,
which then tries certificates (WeChat signs with either while a merchant migrates).

Answer mapping: SUCCESS and FAIL only from answers whose meaning is definite; timeouts, connection
errors, 5xx, 429, unverifiable or unreadable answers, and codes meaning "maybe" (USERPAYING, SYSTEM_ERROR,
ORDER_PAID on create, OUT_TRADE_NO_USED ...) are UNKNOWN: the caller queries, then closes or cancels.
cancel() is the code-pay reverse (/v3/pay/transactions/out-trade-no/{no}/reverse, which 2.0.4 offers):
it closes an unpaid trade and refunds a paid one. refund() answers trade_no = WeChat's refund_id and
amount_fen = the refunded amount. Notifications: ack() is HTTP 204 with no body; nack() is HTTP 500 with
{"code": "FAIL", "message": reason}, as the v3 docs ask. v3 only notifies successful payments, so a
PaymentNotice from here always has paid=True; refund events are rejected (give refunds their own URL).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
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
from chalicelib.domain.clock import BEIJING
from chalicelib.domain.money import is_valid_amount

log = logging.getLogger(__name__)

PATH_PREFIX = "/wxpay"  # where the sandbox serves v3, below the gateway root
TIMESTAMP_TOLERANCE_S = 300
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"

TRADE_STATES = {
    "SUCCESS": TradeStatus.PAID, "REFUND": TradeStatus.REFUNDED, "NOTPAY": TradeStatus.NOT_PAID,
    "CLOSED": TradeStatus.CLOSED, "REVOKED": TradeStatus.CLOSED, "PAYERROR": TradeStatus.CLOSED,
    "USERPAYING": TradeStatus.USER_PAYING, "ACCEPT": TradeStatus.USER_PAYING,
}
# Codes that never settle anything, whatever the call: the platform did not decide, so we do not either.
MAYBE_CODES = frozenset({"SYSTEM_ERROR", "SYSTEMERROR", "BANK_ERROR", "BANKERROR", "FREQUENCY_LIMITED", "USERPAYING"})
# Code pay: only these 4xx codes mean "no money moved and none will" (everything else is UNKNOWN).
SCAN_PAY_FAILURES = frozenset({
    "NOTENOUGH", "NOT_ENOUGH", "AUTH_CODE_INVALID", "AUTHCODEEXPIRE", "AUTH_CODE_EXPIRE", "PARAM_ERROR",
    "INVALID_REQUEST", "APPID_MCHID_NOT_MATCH", "MCH_NOT_EXISTS", "NO_AUTH", "NOAUTH", "RULE_LIMIT",
    "RULELIMIT", "TRADE_ERROR", "BUYER_MISMATCH", "ORDER_CLOSED", "SIGN_ERROR",
})
ORDER_EXISTS_CODES = frozenset({"ORDER_PAID", "ORDERPAID", "OUT_TRADE_NO_USED"})
NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST"})
SECRET_SETTINGS = frozenset({"merchant_private_key", "apiv3_key"})  # sealed with KMS at rest


@dataclass(frozen=True)
class TradeBill:
    """download_trade_bill(): the day's bill text (empty with code NO_STATEMENT_EXIST on a day without trades)."""

    state: ChannelState
    text: str = ""
    code: str = ""
    message: str = ""


@dataclass(frozen=True)
class _Answer:
    status: int
    data: dict

    @property
    def code(self) -> str:
        return str(self.data.get("code") or "")

    @property
    def is_2xx(self) -> bool:
        return 200 <= self.status < 300

    @property
    def definite_error(self) -> bool:
        """A 4xx that names its reason: the platform refused, and says so."""
        return 400 <= self.status < 500 and self.status != 429 and bool(self.code) and self.code not in MAYBE_CODES


# ----------------------------------------------------------------------------- SDK glue (imported lazily)

@functools.cache
def _sdk() -> SimpleNamespace:
    from wechatpayv3 import WeChatPay, WeChatPayType
    from wechatpayv3.core import Core
    from wechatpayv3.utils import aes_decrypt

    class LazyCertificateCore(Core):
        def _init_certificates(self) -> None:
            """Not at construction (it would call production): _verify_signature downloads on first need."""

    class Client(WeChatPay):
        def __init__(self, core: Core, appid: str, mchid: str) -> None:
            # The attributes WeChatPay.__init__ (2.0.4) sets, with our Core;
            # test_sdk_glue_mirrors_wechatpay_init guards the list.
            self._type = WeChatPayType.NATIVE
            self._mchid = mchid
            self._appid = appid
            self._notify_url = None
            self._core = core
            self._partner_mode = False

    return SimpleNamespace(Client=Client, Core=LazyCertificateCore, WeChatPayType=WeChatPayType,
                           aes_decrypt=aes_decrypt)


_CLIENTS: dict[str, Any] = {}  # settings digest -> client: parsed keys and downloaded certificates, reused
_CLIENTS_LOCK = threading.Lock()
MAX_CLIENTS = 64


def _client_for(settings: Mapping[str, str], gateway: str | None, timeout_s: float) -> Any:
    """One client per (settings, gateway, timeout) in this process, so a warm Lambda neither re-parses the
    merchant key (tens of ms) nor downloads certificates again. Keyed by a digest, never by the secrets."""
    material = json.dumps([sorted(settings.items()), gateway, timeout_s], ensure_ascii=False)
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(digest)
        if client is None:
            if len(_CLIENTS) >= MAX_CLIENTS:
                _CLIENTS.pop(next(iter(_CLIENTS)))  # the oldest; merchants are few per container
            client = _CLIENTS[digest] = _make_client(settings, gateway, timeout_s)
        return client


def _make_client(settings: Mapping[str, str], gateway: str | None, timeout_s: float) -> Any:
    sdk = _sdk()
    core = sdk.Core(
        mchid=settings["mchid"], cert_serial_no=settings["merchant_cert_serial"],
        private_key=settings["merchant_private_key"], apiv3_key=settings["apiv3_key"], timeout=timeout_s,
        public_key=settings.get("public_key") or None, public_key_id=settings.get("public_key_id") or None,
    )
    if gateway:
        core._gate_way = gateway.rstrip("/") + PATH_PREFIX
    return sdk.Client(core, appid=settings["appid"], mchid=settings["mchid"])


# ----------------------------------------------------------------------------- small parsers

def _json_object(body: object) -> dict:
    """The SDK hands back text for JSON answers and bytes otherwise; anything but an object reads as {}."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _fen(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"amount is not int fen: {value!r}")
    return value


def _unix(rfc3339: object) -> float:
    moment = datetime.fromisoformat(str(rfc3339))
    if moment.tzinfo is None:
        raise ValueError("time without an offset")
    return moment.timestamp()


def _time_expire(unix_seconds: float) -> str:
    """RFC 3339 in Beijing time, as WeChat documents it: 2026-01-05T12:00:00+08:00."""
    return datetime.fromtimestamp(int(unix_seconds), BEIJING).isoformat()


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def _reject(reason: str) -> NotificationRejected:
    return NotificationRejected(reason)


# ----------------------------------------------------------------------------- the channel

class WeChatPayV3Channel:
    name = "wechat_v3"
    wallet = "wechat"

    def __init__(self, settings: Mapping[str, str], gateway: str | None = None, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        missing = [k for k in ("appid", "mchid", "merchant_private_key", "merchant_cert_serial", "apiv3_key")
                   if not settings.get(k)]
        if missing:
            raise ValueError(f"wechat_v3 settings lack {', '.join(missing)}")
        if bool(settings.get("public_key")) != bool(settings.get("public_key_id")):
            raise ValueError("wechat_v3: public_key and public_key_id go together")
        self._appid = settings["appid"]
        self._mchid = settings["mchid"]
        self._apiv3_key = settings["apiv3_key"]
        self._public_key_id = settings.get("public_key_id") or None
        self._store_id = settings.get("store_id") or settings["mchid"]
        self._clock = clock
        self._client = _client_for(settings, gateway, timeout_s)

    # -- plumbing

    def _call(self, method: str, **kwargs: Any) -> _Answer:
        status, body = getattr(self._client, method)(**kwargs)
        return _Answer(int(status), _json_object(body))

    def _guard(self, operation: str, run: Callable[[], ChannelResult]) -> ChannelResult:
        """Whatever goes wrong between asking and understanding the answer is UNKNOWN, never FAIL."""
        try:
            result = run()
        except Exception as error:  # timeouts, refused connections, bad signatures, odd answers
            result = unknown(f"{operation}: {type(error).__name__}: {error}")
        if result.state is ChannelState.UNKNOWN:
            log.warning("wechat_v3 %s UNKNOWN code=%s %s", operation, result.code, result.message)
        return result

    def _paid(self, data: dict, out_trade_no: str) -> ChannelResult:
        self._same_trade(data, out_trade_no)
        return ChannelResult(
            ChannelState.SUCCESS, trade_status=TradeStatus.PAID, trade_no=str(data["transaction_id"]),
            amount_fen=_fen(data["amount"]["total"]), paid_at=_unix(data["success_time"]),
        )

    @staticmethod
    def _same_trade(data: dict, out_trade_no: str) -> None:
        if data.get("out_trade_no") != out_trade_no:
            raise ValueError(f"answer is about trade {data.get('out_trade_no')!r}")

    # -- capabilities

    def create_native_qr(self, request: NativeOrderRequest) -> ChannelResult:
        if not is_valid_amount(request.amount_fen):
            raise ValueError(f"not a payable amount: {request.amount_fen!r}")
        return self._guard("native", lambda: self._native(request))

    def _native(self, request: NativeOrderRequest) -> ChannelResult:
        answer = self._call(
            "pay", description=request.description, out_trade_no=request.out_trade_no,
            amount={"total": request.amount_fen, "currency": "CNY"}, time_expire=_time_expire(request.expires_at),
            scene_info={"payer_client_ip": request.client_ip}, notify_url=request.notify_url,
            pay_type=_sdk().WeChatPayType.NATIVE,
        )
        code_url = answer.data.get("code_url")
        if answer.status == 200 and isinstance(code_url, str) and code_url:
            return ChannelResult(ChannelState.SUCCESS, trade_status=TradeStatus.NOT_PAID, qr=code_url)
        if answer.code in ORDER_EXISTS_CODES:  # an earlier attempt created it, maybe paid: query tells
            return unknown(answer.data.get("message", ""), answer.code)
        if answer.definite_error:
            return ChannelResult(ChannelState.FAIL, code=answer.code, message=answer.data.get("message", ""))
        return unknown(f"native answered HTTP {answer.status}", answer.code)

    def scan_pay(self, request: ScanPayRequest) -> ChannelResult:
        if not is_valid_amount(request.amount_fen):
            raise ValueError(f"not a payable amount: {request.amount_fen!r}")
        return self._guard("codepay", lambda: self._scan_pay(request))

    def _scan_pay(self, request: ScanPayRequest) -> ChannelResult:
        answer = self._call(
            "pay", description=request.description, out_trade_no=request.out_trade_no,
            amount={"total": request.amount_fen, "currency": "CNY"}, payer={"auth_code": request.auth_code},
            scene_info={"store_info": {"out_id": self._store_id}, "device_ip": request.client_ip},
            pay_type=_sdk().WeChatPayType.CODEPAY,
        )
        state = answer.data.get("trade_state")
        if answer.is_2xx and state == "SUCCESS":
            return self._paid(answer.data, request.out_trade_no)
        if answer.status == 202 or state == "USERPAYING" or answer.code == "USERPAYING":
            return ChannelResult(ChannelState.UNKNOWN, trade_status=TradeStatus.USER_PAYING, code="USERPAYING",
                                 message="the consumer is entering the password: query")
        if answer.is_2xx and state in ("PAYERROR", "CLOSED", "REVOKED"):
            return ChannelResult(ChannelState.FAIL, trade_status=TradeStatus.CLOSED, code=str(state))
        if answer.definite_error and answer.code in SCAN_PAY_FAILURES:
            return ChannelResult(ChannelState.FAIL, code=answer.code, message=answer.data.get("message", ""))
        return unknown(f"codepay answered HTTP {answer.status} {state or ''}".strip(), answer.code)

    def query(self, out_trade_no: str) -> ChannelResult:
        return self._guard("query", lambda: self._query(out_trade_no))

    def _query(self, out_trade_no: str) -> ChannelResult:
        answer = self._call("query", out_trade_no=out_trade_no)
        if answer.status == 404 and answer.code in NOT_FOUND_CODES:
            return ChannelResult(ChannelState.SUCCESS, trade_status=TradeStatus.NOT_FOUND, code=answer.code)
        if answer.status != 200:
            return unknown(f"query answered HTTP {answer.status}", answer.code)
        data = answer.data
        state = str(data.get("trade_state"))
        if state in ("SUCCESS", "REFUND"):
            paid = self._paid(data, out_trade_no)
            return ChannelResult(ChannelState.SUCCESS, trade_status=TRADE_STATES[state], trade_no=paid.trade_no,
                                 amount_fen=paid.amount_fen, paid_at=paid.paid_at, code=state)
        self._same_trade(data, out_trade_no)
        if state not in TRADE_STATES:
            return unknown(f"unknown trade_state {state!r}")
        return ChannelResult(ChannelState.SUCCESS, trade_status=TRADE_STATES[state], code=state,
                             trade_no=data.get("transaction_id") or None)

    def close(self, out_trade_no: str) -> ChannelResult:
        return self._guard("close", lambda: self._close(out_trade_no))

    def _close(self, out_trade_no: str) -> ChannelResult:
        answer = self._call("close", out_trade_no=out_trade_no)
        if answer.status in (200, 204) or answer.code == "ORDER_CLOSED":
            return ChannelResult(ChannelState.SUCCESS, trade_status=TradeStatus.CLOSED, code=answer.code)
        if answer.definite_error:  # ORDER_PAID above all: the consumer paid, keep the payment
            return ChannelResult(ChannelState.FAIL, code=answer.code, message=answer.data.get("message", ""))
        return unknown(f"close answered HTTP {answer.status}", answer.code)

    def cancel(self, out_trade_no: str) -> ChannelResult:
        return self._guard("reverse", lambda: self._cancel(out_trade_no))

    def _cancel(self, out_trade_no: str) -> ChannelResult:
        answer = self._call("codepay_reverse", out_trade_no=out_trade_no)
        if answer.is_2xx:
            return ChannelResult(ChannelState.SUCCESS, trade_status=TradeStatus.CLOSED)
        if answer.definite_error:
            return ChannelResult(ChannelState.FAIL, code=answer.code, message=answer.data.get("message", ""))
        return unknown(f"reverse answered HTTP {answer.status}", answer.code)

    def refund(self, request: RefundRequest) -> ChannelResult:
        if not (is_valid_amount(request.refund_fen) and is_valid_amount(request.total_fen)):
            raise ValueError("refund and total are positive int fen")
        return self._guard("refund", lambda: self._refund(request))

    def _refund(self, request: RefundRequest) -> ChannelResult:
        answer = self._call(
            "refund", out_refund_no=request.out_refund_no, out_trade_no=request.out_trade_no,
            amount={"refund": request.refund_fen, "total": request.total_fen, "currency": "CNY"},
            reason=request.reason or None, notify_url=request.notify_url or None,
        )
        if not answer.is_2xx:
            if answer.definite_error:
                return ChannelResult(ChannelState.FAIL, code=answer.code, message=answer.data.get("message", ""))
            return unknown(f"refund answered HTTP {answer.status}", answer.code)
        data = answer.data
        if data.get("out_refund_no") != request.out_refund_no:
            raise ValueError(f"answer is about refund {data.get('out_refund_no')!r}")
        status = str(data.get("status"))
        result = {"trade_no": str(data["refund_id"]), "amount_fen": _fen(data["amount"]["refund"]), "code": status}
        if status == "SUCCESS":  # the money went back
            return ChannelResult(ChannelState.SUCCESS, TradeStatus.REFUNDED, **result)
        if status == "PROCESSING":  # accepted: query_refund tells when it is done
            return ChannelResult(ChannelState.SUCCESS, **result)
        if status == "CLOSED":
            return ChannelResult(ChannelState.FAIL, **result)
        return ChannelResult(ChannelState.UNKNOWN, message="refund needs attention", **result)  # ABNORMAL

    def query_refund(self, out_trade_no: str, out_refund_no: str) -> ChannelResult:
        return self._guard("query_refund", lambda: self._query_refund(out_refund_no))

    def _query_refund(self, out_refund_no: str) -> ChannelResult:
        answer = self._call("query_refund", out_refund_no=out_refund_no)
        if answer.status == 404 and answer.code in NOT_FOUND_CODES | {"RESOURCE_NOT_EXISTS"}:  # no such refund
            return ChannelResult(ChannelState.FAIL, trade_status=TradeStatus.NOT_FOUND, code=answer.code)
        if answer.status != 200:
            return unknown(f"query_refund answered HTTP {answer.status}", answer.code)
        data = answer.data
        if data.get("out_refund_no") != out_refund_no:
            raise ValueError(f"answer is about refund {data.get('out_refund_no')!r}")
        status = str(data.get("status"))
        result = {"trade_no": str(data["refund_id"]), "amount_fen": _fen(data["amount"]["refund"]), "code": status}
        if status == "SUCCESS":
            return ChannelResult(ChannelState.SUCCESS, TradeStatus.REFUNDED, **result)
        if status in ("CLOSED", "ABNORMAL"):  # closed, or the money could not reach the payer
            return ChannelResult(ChannelState.FAIL, **result)
        return ChannelResult(ChannelState.UNKNOWN, **result)  # PROCESSING

    # -- reconciliation (not part of PaymentChannel)

    def download_trade_bill(self, bill_date: date) -> TradeBill:
        """The ALL trade bill of one Beijing day, gunzipped and checked against its SHA1 (two calls)."""
        try:
            return self._trade_bill(bill_date)
        except Exception as error:
            return TradeBill(ChannelState.UNKNOWN, message=f"{type(error).__name__}: {error}")

    def _trade_bill(self, bill_date: date) -> TradeBill:
        answer = self._call("trade_bill", bill_date=bill_date.isoformat(), bill_type="ALL", tar_type="GZIP")
        if answer.code == "NO_STATEMENT_EXIST":
            return TradeBill(ChannelState.SUCCESS, code=answer.code)
        if answer.status != 200:
            state = ChannelState.FAIL if answer.definite_error else ChannelState.UNKNOWN
            return TradeBill(state, code=answer.code, message=str(answer.data.get("message", answer.status)))
        status, content = self._client.download_bill(answer.data["download_url"])
        if status != 200 or not isinstance(content, bytes):
            return TradeBill(ChannelState.UNKNOWN, message=f"bill download answered HTTP {status}")
        text = gzip.decompress(content)
        if hashlib.sha1(text).hexdigest().lower() != str(answer.data.get("hash_value", "")).lower():
            return TradeBill(ChannelState.UNKNOWN, message="bill does not match its SHA1")
        return TradeBill(ChannelState.SUCCESS, text=text.decode("utf-8"))

    # -- notifications

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        lowered = {str(name).lower(): str(value) for name, value in headers.items()}
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _reject("body is not UTF-8") from None
        self._verify_signature(lowered, text)
        self._check_timestamp(lowered)
        envelope = _json_object(text)  # parsed only now that WeChat's signature vouches for it
        if envelope.get("event_type") != "TRANSACTION.SUCCESS":
            raise _reject(f"unexpected event_type {envelope.get('event_type')!r}")
        return self._notice(self._decrypt(envelope))

    def _verify_signature(self, headers: dict[str, str], text: str) -> None:
        """FIRST, before anything in the body is believed (the SDK picks the key by Wechatpay-Serial)."""
        serial = headers.get("wechatpay-serial", "")
        if not headers.get("wechatpay-signature"):
            raise _reject("missing Wechatpay-Signature")
        if headers.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise _reject("unsupported Wechatpay-Signature-Type")
        headers.setdefault("wechatpay-signature-type", SIGNATURE_TYPE)  # the SDK insists on the header
        if serial != self._public_key_id and not _is_hex(serial):
            raise _reject(f"unknown Wechatpay-Serial {serial[:64]!r}")
        try:
            verified = self._client._core._verify_signature(headers, text)
        except Exception as error:  # e.g. the certificate download failed
            raise _reject(f"signature not verifiable: {type(error).__name__}") from None
        if not verified:
            raise _reject("bad signature")

    def _check_timestamp(self, headers: dict[str, str]) -> None:
        try:
            timestamp = int(headers.get("wechatpay-timestamp", ""))
        except ValueError:
            raise _reject("bad Wechatpay-Timestamp") from None
        if abs(self._clock() - timestamp) > TIMESTAMP_TOLERANCE_S:
            raise _reject(f"stale timestamp: {timestamp} is more than {TIMESTAMP_TOLERANCE_S}s off")

    def _decrypt(self, envelope: dict) -> dict:
        resource = envelope.get("resource")
        if envelope.get("resource_type") != "encrypt-resource" or not isinstance(resource, dict):
            raise _reject("no encrypted resource")
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise _reject(f"unsupported algorithm {resource.get('algorithm')!r}")
        try:
            plaintext = _sdk().aes_decrypt(
                nonce=str(resource["nonce"]), ciphertext=str(resource["ciphertext"]),
                associated_data=str(resource.get("associated_data") or ""), apiv3_key=self._apiv3_key,
            )
            data = json.loads(plaintext) if plaintext else None
        except (KeyError, ValueError):
            data = None
        if not isinstance(data, dict):
            raise _reject("cannot decrypt resource with the APIv3 key")
        return data

    def _notice(self, resource: dict) -> PaymentNotice:
        if resource.get("trade_state") != "SUCCESS":
            raise _reject(f"trade_state {resource.get('trade_state')!r} in a TRANSACTION.SUCCESS event")
        if resource.get("mchid") != self._mchid:
            raise _reject(f"mchid {resource.get('mchid')!r} is not this merchant's")
        if resource.get("appid") != self._appid:
            raise _reject(f"appid {resource.get('appid')!r} is not this merchant's")
        out_trade_no, transaction_id = resource.get("out_trade_no"), resource.get("transaction_id")
        if not (isinstance(out_trade_no, str) and out_trade_no and isinstance(transaction_id, str) and transaction_id):
            raise _reject("out_trade_no or transaction_id missing")
        try:
            amount_fen = _fen((resource.get("amount") or {}).get("total"))
            paid_at = _unix(resource.get("success_time"))
        except (ValueError, TypeError, AttributeError):
            raise _reject("amount.total or success_time unreadable") from None
        if amount_fen == 0:
            raise _reject("amount.total is zero")
        return PaymentNotice(out_trade_no=out_trade_no, trade_no=transaction_id, amount_fen=amount_fen,
                             paid_at=paid_at, merchant_ref=self._mchid, paid=True)

    def ack(self) -> HttpReply:
        return HttpReply(204)

    def nack(self, reason: str) -> HttpReply:
        body = json.dumps({"code": "FAIL", "message": reason}, ensure_ascii=False)
        return HttpReply(500, body, {"Content-Type": "application/json; charset=utf-8"})


def build(settings: dict, gateway: str | None = None, timeout_s: float = 5.0,
          clock: Callable[[], float] = time.time) -> WeChatPayV3Channel:
    return WeChatPayV3Channel(settings, gateway=gateway, timeout_s=timeout_s, clock=clock)
