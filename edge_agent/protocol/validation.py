"""Required fields of every BODY, per CMD as it appears on the wire (protocol.md, "Commands").

One table, :data:`SCHEMAS`, keyed by wire CMD, serves both directions: what arrives is checked
with it (a problem is a NAK ``BAD_FIELD``), and what we are about to send is checked with it too
(a problem is a :class:`LocalProtocolError`: our bug must not reach a terminal).

Choices where protocol.md says only "int", "str", "bool":

- ``int`` is a JSON integer in the signed 64-bit range. ``true`` is not an int (Python's bool is
  a subclass of int, hence the explicit check), ``12.0`` is not an int (no float near money).
  The sign and size of amounts are business rules (ERR009), answered in a response, not NAKed.
- ``hex str`` (LOGIN ``mac``) is a non-empty string of hex digits; whether it is the right MAC
  (lowercase, 64 digits, correct) is the application's check, answered ``AUTH_FAILED``.
- Extra fields are allowed and ignored (a newer terminal may send more).
- A field that protocol.md lists for a response or a push is required when we send it; where the
  page makes a field conditional ("on success ..."), so does the schema. QUERY ``amount_fen``
  may be null (an ``UNKNOWN`` txn has no amount).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Protocol

from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    CardPay,
    Heartbeat,
    Login,
    OfflineRecord,
    OfflineUpload,
    QrCancel,
    QrCreate,
    Query,
    RequestEvent,
    ScanPay,
)
from .frames import Command, Frame, NakCode, response_of

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_OFFLINE_RECORDS",
    "SCHEMAS",
    "body_problem",
    "check_outgoing",
    "parse_request",
]

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
MAX_OFFLINE_RECORDS: Final = 50
_HEX_DIGITS: Final = frozenset(string.hexdigits)


class Spec(Protocol):
    def problem(self, value: object, name: str) -> str | None:
        """Why ``value`` (called ``name`` in messages) does not fit, or None when it does."""


def _kind(value: object) -> str:
    """The JSON name of a Python value's type, for error details."""
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _want(name: str, expected: str, value: object) -> str:
    return f"field '{name}' must be {expected}, got {_kind(value)}"


@dataclass(frozen=True)
class Int:
    def problem(self, value: object, name: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return _want(name, "int", value)
        if not INT_MIN <= value <= INT_MAX:
            return f"field '{name}' is out of the 64-bit integer range"
        return None


@dataclass(frozen=True)
class Str:
    def problem(self, value: object, name: str) -> str | None:
        return None if isinstance(value, str) else _want(name, "str", value)


@dataclass(frozen=True)
class HexStr:
    def problem(self, value: object, name: str) -> str | None:
        if not isinstance(value, str):
            return _want(name, "hex str", value)
        if not value or not _HEX_DIGITS.issuperset(value):
            return f"field '{name}' must be a non-empty hex string"
        return None


@dataclass(frozen=True)
class Bool:
    def problem(self, value: object, name: str) -> str | None:
        return None if isinstance(value, bool) else _want(name, "bool", value)


@dataclass(frozen=True)
class Nullable:
    inner: Spec

    def problem(self, value: object, name: str) -> str | None:
        return None if value is None else self.inner.problem(value, name)


@dataclass(frozen=True)
class OneOf:
    values: tuple[str, ...]

    def problem(self, value: object, name: str) -> str | None:
        if value in self.values and isinstance(value, str):
            return None
        return f"field '{name}' must be one of {', '.join(self.values)}"


@dataclass(frozen=True)
class ListOf:
    item: Spec
    max_items: int | None = None

    def problem(self, value: object, name: str) -> str | None:
        if not isinstance(value, list):
            return _want(name, "list", value)
        if self.max_items is not None and len(value) > self.max_items:
            return f"field '{name}' has {len(value)} items, at most {self.max_items}"
        for index, item in enumerate(value):
            found = self.item.problem(item, f"{name}[{index}]")
            if found:
                return found
        return None


# Fast path of Obj: a field whose spec only asks for a type (and the int range) is checked inline,
# by exact type: a JSON parser makes exactly these types. Anything else (a subclass, a missing
# field, a list) goes through the specs themselves, which find and describe the problem. The fast
# path only ever *accepts*: it never accepts what the specs refuse, and never words a refusal.
_NONE_TYPE: Final = type(None)
_MISSING: Final = object()
_FastField = tuple[str, frozenset[type], frozenset[str] | None]  # key, exact types, allowed values


def _fast_field(key: str, spec: Spec) -> _FastField | None:
    if isinstance(spec, Nullable):
        inner = _fast_field(key, spec.inner)
        return None if inner is None else (key, inner[1] | {_NONE_TYPE}, inner[2])
    if isinstance(spec, Int):
        return key, frozenset({int}), None
    if isinstance(spec, Str):
        return key, frozenset({str}), None
    if isinstance(spec, Bool):
        return key, frozenset({bool}), None
    if isinstance(spec, OneOf):
        return key, frozenset({str}), frozenset(spec.values)
    return None


@dataclass(frozen=True)
class Obj:
    fields: Mapping[str, Spec]

    def __post_init__(self) -> None:
        fast = [_fast_field(key, spec) for key, spec in self.fields.items()]
        simple = all(item is not None for item in fast)
        object.__setattr__(self, "_fast", tuple(fast) if simple else None)  # type: ignore[arg-type]

    def _passes_fast(self, value: dict[str, Any]) -> bool:
        fast: tuple[_FastField, ...] | None = self._fast  # type: ignore[attr-defined]
        if fast is None:
            return False
        for key, types, values in fast:
            item = value.get(key, _MISSING)
            kind = type(item)
            if kind not in types:
                return False
            if kind is int:
                if not INT_MIN <= item <= INT_MAX:  # type: ignore[operator]
                    return False
            elif values is not None and item not in values:
                return False
        return True

    def problem(self, value: object, name: str) -> str | None:
        if type(value) is dict and self._passes_fast(value):
            return None
        if not isinstance(value, dict):
            return _want(name or "BODY", "object", value)
        for key, spec in self.fields.items():
            path = f"{name}.{key}" if name else key
            if key not in value:
                return f"missing field '{path}'"
            found = spec.problem(value[key], path)
            if found:
                return found
        return None


@dataclass(frozen=True)
class Switch:
    """``base``, then the extra fields that apply for the value of ``key`` (e.g. ``ok``)."""

    base: Obj
    key: str
    variants: Mapping[bool, Obj]

    def problem(self, value: object, name: str) -> str | None:
        found = self.base.problem(value, name)
        if found or not isinstance(value, dict):
            return found
        variant = self.variants.get(value[self.key])
        return variant.problem(value, name) if variant else None


_INT: Final = Int()
_STR: Final = Str()
_BOOL: Final = Bool()
_OFFLINE_RECORD: Final = Obj({"txn": _INT, "card": _STR, "amount_fen": _INT, "ts": _INT})
_VERSIONS: Final[dict[str, Spec]] = {"params_ver": _INT, "blacklist_ver": _INT}

# Terminal -> edge agent requests.
_REQUESTS: Final[dict[int, Spec]] = {
    Command.LOGIN: Obj({"tid": _STR, "ts": _INT, "nonce": _STR, "mac": HexStr()}),
    Command.HEARTBEAT: Obj({"ts": _INT, "offline_pending": _INT}),
    Command.CARD_PAY: _OFFLINE_RECORD,
    Command.QR_CREATE: Obj({"txn": _INT, "amount_fen": _INT}),
    Command.QR_CANCEL: Obj({"txn": _INT}),
    Command.SCAN_PAY: Obj({"txn": _INT, "amount_fen": _INT, "auth_code": _STR}),
    Command.QUERY: Obj({"txn": _INT}),
    Command.OFFLINE_UPLOAD: Obj({"records": ListOf(_OFFLINE_RECORD, MAX_OFFLINE_RECORDS)}),
}

# Edge agent -> terminal responses to those requests.
_RESULT: Final[dict[str, Spec]] = {"txn": _INT, "ok": _BOOL, "code": _STR, "msg": _STR}
_RESPONSES: Final[dict[int, Spec]] = {
    Command.LOGIN: Switch(
        Obj({"ok": _BOOL}),
        "ok",
        {
            True: Obj({"server_time": _INT, "merchant_name": _STR, **_VERSIONS}),
            False: Obj({"code": _STR}),
        },
    ),
    Command.HEARTBEAT: Obj({"server_time": _INT, **_VERSIONS}),
    Command.CARD_PAY: Obj(
        {**_RESULT, "voice": _STR, "balance_fen": Nullable(_INT), "offline": _BOOL}
    ),
    Command.QR_CREATE: Switch(
        Obj(_RESULT), "ok", {True: Obj({"order_id": _STR, "qr": _STR, "expires_in": _INT})}
    ),
    Command.QR_CANCEL: Obj({"txn": _INT, "ok": _BOOL, "status": _STR}),
    Command.SCAN_PAY: Obj(
        {**_RESULT, "status": OneOf(("PAID", "PAYING", "FAILED")), "voice": _STR}
    ),
    Command.QUERY: Obj(
        {
            "txn": _INT,
            "status": OneOf(("PAYING", "PAID", "CLOSED", "FAILED", "UNKNOWN")),
            "amount_fen": Nullable(_INT),
        }
    ),
    Command.OFFLINE_UPLOAD: Obj(
        {"accepted": ListOf(_INT), "rejected": ListOf(Obj({"txn": _INT, "code": _STR}))}
    ),
}

# Edge agent -> terminal pushes, and the terminal's acknowledgements of them.
_PUSHES: Final[dict[int, Spec]] = {
    Command.PAY_RESULT: Obj(
        {
            "txn": _INT,
            "order_id": _STR,
            "status": OneOf(("PAID", "CLOSED", "FAILED")),
            "amount_fen": _INT,
            "channel": OneOf(("wechat", "alipay", "card")),
            "msg": _STR,
            "voice": _STR,
        }
    ),
    Command.BLACKLIST: Obj(
        {"ver": _INT, "full": _BOOL, "add": ListOf(_STR), "remove": ListOf(_STR)}
    ),
    Command.PARAMS: Obj({"ver": _INT}),
    Command.TIME_SET: Obj({"server_time": _INT}),
}
_ACKS: Final[dict[int, Spec]] = {
    Command.PAY_RESULT: Obj({"txn": _INT}),
    Command.BLACKLIST: Obj({"ver": _INT}),
    Command.PARAMS: Obj({"ver": _INT}),
    Command.TIME_SET: Obj({}),
}

SCHEMAS: Final[Mapping[int, Spec]] = {
    **_REQUESTS,
    **{response_of(cmd): spec for cmd, spec in _RESPONSES.items()},
    **_PUSHES,
    **{response_of(cmd): spec for cmd, spec in _ACKS.items()},
    Command.NAK: Obj({"code": OneOf(tuple(NakCode)), "detail": _STR}),
}
"""Required BODY fields for each wire CMD (requests, responses, pushes, acks, NAK)."""


def body_problem(cmd: int, body: object) -> str | None:
    """Why ``body`` is not a valid BODY for wire CMD ``cmd``, or None when it is."""
    spec = SCHEMAS.get(cmd)
    if spec is None:
        return f"unknown CMD 0x{cmd:02X}"
    return spec.problem(body, "")


def check_outgoing(cmd: int, body: dict[str, Any]) -> None:
    """Raise :class:`LocalProtocolError` unless ``body`` is a valid BODY for ``cmd`` to send."""
    found = body_problem(cmd, body)
    if found:
        raise LocalProtocolError(f"CMD 0x{cmd:02X}: {found}")


def _fields_after_seq(event: type[RequestEvent]) -> tuple[str, ...]:
    names = tuple(f.name for f in fields(event))
    if names[:1] != ("seq",):
        raise TypeError(f"{event.__name__}: seq must be the first field")  # parse_request relies on it
    return names[1:]


_EVENT_TYPES: Final[dict[int, tuple[type[RequestEvent], tuple[str, ...]]]] = {
    event.CMD: (event, _fields_after_seq(event))
    for event in (Login, Heartbeat, CardPay, QrCreate, QrCancel, ScanPay, Query)
}
"""CMD -> (event type, its fields after ``seq``, in order): worked out once, not per request."""


def parse_request(frame: Frame) -> RequestEvent:
    """The typed request event of a terminal's request frame.

    Raises :class:`RemoteProtocolError` with code ``UNKNOWN_CMD`` (not a request CMD) or
    ``BAD_FIELD`` (a required field missing or of the wrong type).
    """
    spec = _REQUESTS.get(frame.cmd)
    if spec is None:
        raise RemoteProtocolError(NakCode.UNKNOWN_CMD, f"CMD 0x{frame.cmd:02X} is not a request")
    found = spec.problem(frame.body, "")
    if found:
        raise RemoteProtocolError(NakCode.BAD_FIELD, found)
    body = frame.body
    if frame.cmd == Command.OFFLINE_UPLOAD:
        records = tuple(
            OfflineRecord(r["txn"], r["card"], r["amount_fen"], r["ts"]) for r in body["records"]
        )
        return OfflineUpload(frame.seq, records)
    event_type, names = _EVENT_TYPES[frame.cmd]
    return event_type(frame.seq, *[body[name] for name in names])
