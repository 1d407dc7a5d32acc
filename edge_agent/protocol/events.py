"""Typed, frozen events that come out of the sessions (h11 style).

Requests from a terminal carry exactly the fields protocol.md requires, already type-checked by
:mod:`edge_agent.protocol.validation`; unknown extra fields are dropped. Every request keeps its
``seq`` so that :meth:`ServerSession.respond` can echo it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from .frames import Command

__all__ = [
    "CardPay",
    "CloseConnection",
    "Heartbeat",
    "Login",
    "NakReceived",
    "OfflineRecord",
    "OfflineUpload",
    "PushAck",
    "QrCancel",
    "QrCreate",
    "Query",
    "RequestEvent",
    "ScanPay",
]


@dataclass(frozen=True)
class Login:
    CMD: ClassVar[Command] = Command.LOGIN
    seq: int
    tid: str
    ts: int
    nonce: str
    mac: str


@dataclass(frozen=True)
class Heartbeat:
    CMD: ClassVar[Command] = Command.HEARTBEAT
    seq: int
    ts: int
    offline_pending: int


@dataclass(frozen=True)
class CardPay:
    CMD: ClassVar[Command] = Command.CARD_PAY
    seq: int
    txn: int
    card: str
    amount_fen: int
    ts: int


@dataclass(frozen=True)
class QrCreate:
    CMD: ClassVar[Command] = Command.QR_CREATE
    seq: int
    txn: int
    amount_fen: int


@dataclass(frozen=True)
class QrCancel:
    CMD: ClassVar[Command] = Command.QR_CANCEL
    seq: int
    txn: int


@dataclass(frozen=True)
class ScanPay:
    CMD: ClassVar[Command] = Command.SCAN_PAY
    seq: int
    txn: int
    amount_fen: int
    auth_code: str


@dataclass(frozen=True)
class Query:
    CMD: ClassVar[Command] = Command.QUERY
    seq: int
    txn: int


@dataclass(frozen=True)
class OfflineRecord:
    """One card payment the terminal decided while it could not reach the edge agent."""

    txn: int
    card: str
    amount_fen: int
    ts: int


@dataclass(frozen=True)
class OfflineUpload:
    CMD: ClassVar[Command] = Command.OFFLINE_UPLOAD
    seq: int
    records: tuple[OfflineRecord, ...]


RequestEvent: TypeAlias = (
    Login | Heartbeat | CardPay | QrCreate | QrCancel | ScanPay | Query | OfflineUpload
)


@dataclass(frozen=True)
class PushAck:
    """The terminal acknowledged the push ``seq`` (CMD ``push_cmd | 0x80``).

    ``push_body`` is the body that was pushed, so the application can mark e.g. the PAY_RESULT
    of that ``txn`` delivered without keeping its own seq map.
    """

    seq: int
    push_cmd: int
    body: dict[str, Any]
    push_body: dict[str, Any]


@dataclass(frozen=True)
class NakReceived:
    """The peer answered our frame ``seq`` with NAK. Never answered with a NAK (no NAK ping-pong).

    ``code`` and ``detail`` are the peer's, passed on as received when they are strings and
    replaced by ``""`` otherwise (a NAK is informational: it is not worth a NAK of its own).
    """

    seq: int
    code: str
    detail: str


@dataclass(frozen=True)
class CloseConnection:
    """The session is over: the caller sends what :meth:`data_to_send` holds, then closes."""

    reason: str
