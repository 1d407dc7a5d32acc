"""The one interface every payment channel implements, capability by capability.

Every call answers SUCCESS, FAIL or UNKNOWN (Jeepay's ChannelRetMsg.ChannelState). A timeout, a
connection error, a 5xx or an answer we cannot read is UNKNOWN, never FAIL: the caller queries the
channel later and then closes or cancels there. A payment is never marked failed because a call
timed out.

Implementations import their SDK lazily (inside methods or at construction), so that importing
the app does not pay for SDKs a request does not use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping, Protocol


class ChannelState(str, Enum):
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


class TradeStatus(str, Enum):
    """A platform trade's status as the channel reports it, in the platforms' common terms."""

    NOT_PAID = "NOT_PAID"  # WeChat NOTPAY, Alipay WAIT_BUYER_PAY (or trade not yet created)
    USER_PAYING = "USER_PAYING"  # payment code: the consumer is entering the password
    PAID = "PAID"  # WeChat SUCCESS, Alipay TRADE_SUCCESS / TRADE_FINISHED
    CLOSED = "CLOSED"  # WeChat CLOSED / REVOKED / PAYERROR, Alipay TRADE_CLOSED (unpaid)
    REFUNDED = "REFUNDED"  # WeChat REFUND (paid, then refunded in part or whole)
    NOT_FOUND = "NOT_FOUND"  # the platform has no such trade
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class ChannelResult:
    state: ChannelState
    trade_status: TradeStatus | None = None  # query and scan pay
    trade_no: str | None = None  # the platform's transaction id
    amount_fen: int | None = None  # what the platform says was paid
    paid_at: float | None = None
    qr: str | None = None  # create_native_qr: the text to draw
    prepay_id: str | None = None  # create_jsapi: what the payer's page hands to WeChat
    code: str = ""  # the platform's error code, for logs and the console
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state is ChannelState.SUCCESS


def unknown(message: str, code: str = "") -> ChannelResult:
    return ChannelResult(ChannelState.UNKNOWN, code=code, message=message)


@dataclass(frozen=True)
class NativeOrderRequest:
    out_trade_no: str
    amount_fen: int
    description: str
    notify_url: str
    expires_at: float  # unix seconds; the platform closes the trade by itself after it
    client_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class ScanPayRequest:
    out_trade_no: str
    amount_fen: int
    description: str
    auth_code: str
    client_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str
    out_refund_no: str  # chosen by us, persisted before the call: retries refund once
    total_fen: int
    refund_fen: int
    reason: str
    notify_url: str = ""


@dataclass(frozen=True)
class PaymentNotice:
    """A verified payment notification, in our terms."""

    out_trade_no: str
    trade_no: str
    amount_fen: int
    paid_at: float
    merchant_ref: str  # the app id / mch id / seller id the platform names, checked against the order
    paid: bool  # False for a notification that reports anything other than success


@dataclass(frozen=True)
class HttpReply:
    """Exactly what the platform expects back: WeChat v2 XML, v3 204, Alipay 'success'."""

    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


class NotificationRejected(Exception):
    """Signature, format or merchant check failed. Nothing may change; the reply says so."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentChannel(Protocol):
    """One merchant's account at one platform (direct or through the bank)."""

    name: str  # "wechat_v2", "wechat_v3", "alipay", "bank_wechat", "bank_alipay"
    wallet: str  # "wechat" or "alipay": the wallet a consumer pays with

    def create_native_qr(self, request: NativeOrderRequest) -> ChannelResult: ...

    def scan_pay(self, request: ScanPayRequest) -> ChannelResult: ...

    def query(self, out_trade_no: str) -> ChannelResult: ...

    def close(self, out_trade_no: str) -> ChannelResult:
        """Close an unpaid QR trade so it can no longer be paid."""

    def cancel(self, out_trade_no: str) -> ChannelResult:
        """Cancel (WeChat reverse, Alipay cancel) a payment-code trade, refunding it if it was paid."""

    def refund(self, request: RefundRequest) -> ChannelResult:
        """SUCCESS with trade_status REFUNDED: the money went back. SUCCESS without it: the platform
        accepted the refund and is still processing it (ask query_refund). FAIL: refused, nothing moved."""

    def query_refund(self, out_trade_no: str, out_refund_no: str) -> ChannelResult:
        """A refund's outcome: SUCCESS (trade_status REFUNDED) when the money went back; FAIL when the
        platform failed or closed it, or with trade_status NOT_FOUND when it never received it; UNKNOWN
        while it is processing or when the platform gave no definite answer."""

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """Verify the signature over the raw body first, then parse. Raises NotificationRejected."""

    def ack(self) -> HttpReply: ...

    def nack(self, reason: str) -> HttpReply: ...
