"""Frame codec of the terminal protocol, version 1 (shared/protocol.md), sans-IO.

Bytes in, events out; no sockets, no clock. The same codec serves both directions: the edge agent
decodes terminal requests with it and the terminal simulator decodes responses and pushes.

Frame layout (all integers unsigned, big-endian)::

    offset  size  field
    0       1     STX   0x02
    1       1     VER   0x01
    2       2     LEN   length of BODY in bytes, 0..4096
    4       2     SEQ   sender's sequence number; a response echoes its request's SEQ
    6       1     CMD   command; a response is request CMD | 0x80
    7       LEN   BODY  UTF-8 JSON object; LEN 0 means {}
    7+LEN   2     CRC   CRC-16/MODBUS over offsets 1 .. 6+LEN (VER, LEN, SEQ, CMD, BODY), big-endian
    9+LEN   1     ETX   0x03

    overhead 10 bytes; smallest frame 10 bytes (LEN 0), largest 4106 bytes (LEN 4096)

Example, HEARTBEAT (CMD 0x02), SEQ 1, BODY {} sent as LEN 0::

    02 | 01 | 00 00 | 00 01 | 02 | (no body) | 9B 81 | 03
    STX  VER  LEN=0   SEQ=1   CMD              CRC      ETX
    CRC-16/MODBUS(01 00 00 00 01 02) = 0x9B81, sent high byte first.

Encoding (:func:`encode_frame`): compact JSON (no spaces), ``ensure_ascii=False`` so Chinese
screen text travels as UTF-8 (3 bytes a character instead of 6), NaN/Infinity refused (not JSON).
An empty body ``{}`` is sent as LEN 0, which protocol.md defines as ``{}``: it is the shortest
form and every conforming receiver must accept it. A body over 4096 bytes raises
:class:`~edge_agent.protocol.errors.LocalProtocolError`.

Decoding (:class:`FrameDecoder`), the robustness rules of protocol.md and how they are met:

- Bytes before an STX are skipped silently.
- The 7 header bytes are read before any judgement, so that every :class:`BadFrame` carries the
  SEQ (and CMD) of the bad frame for the NAK to echo. Then, in this order:
  VER != 1 -> ``BAD_FRAME``; LEN > 4096 -> ``TOO_LONG`` (judged on the header alone: the
  decoder never waits for, nor stores, the declared oversize body); ETX wrong -> ``BAD_FRAME``
  (checked before the CRC: a wrong ETX means the framing itself is off, usually a damaged LEN,
  which the CRC then also fails); CRC wrong -> ``BAD_CRC``; BODY not strict UTF-8, not JSON, with
  NaN/Infinity, duplicate keys, unpaired surrogate escapes, nesting deep enough to hit Python's
  recursion limit, or not an object -> ``BAD_JSON``.
- Resynchronisation. A frame that failed on VER, LEN, ETX or CRC has unproven boundaries (its LEN
  may be the damaged byte), so the decoder looks for the next STX starting at the byte *after the
  bad frame's STX*, re-examining the bytes it had taken for that frame. A good frame that follows
  a damaged one (even inside the damaged frame's declared length) is therefore never lost. The
  cost is that header, CRC or SEQ bytes of the damaged frame may be 0x02 and look like STX; such
  false starts inside a frame already reported are dropped *without* another ``BadFrame``, so one
  damaged frame gives one NAK and counts once towards the 8-bad-frames-in-a-row limit. (A false
  start whose garbage header looks plausible may wait for up to 4106 bytes before it fails: the
  next good frame is then delayed, never lost, and the 10 s incomplete-frame timeout bounds it.)
  A ``BAD_JSON`` frame passed its CRC, so its boundaries are proven: it is consumed whole.

Memory bound: the decoder keeps at most :data:`MAX_BUFFER` (= :data:`MAX_FRAME_SIZE`, 4106) bytes
of its own: the frame being assembled plus, after a bad frame, that frame's bytes still to be
re-examined (they only ever shrink). The caller's chunk is referenced, not copied, and consumed
incrementally by :meth:`FrameDecoder.next_event`; :meth:`FrameDecoder.receive_data` refuses a new
chunk until the previous one is consumed (``next_event()`` returned ``NEED_DATA``), so megabytes
of garbage, or of a valid-looking huge frame, never pile up inside the decoder.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any, Final, Literal

from .crc import crc16_modbus
from .errors import LocalProtocolError

__all__ = [
    "ETX",
    "HEADER_SIZE",
    "MAX_BODY_SIZE",
    "MAX_BUFFER",
    "MAX_FRAME_SIZE",
    "NEED_DATA",
    "OVERHEAD",
    "PUSH_COMMANDS",
    "REQUEST_COMMANDS",
    "RESPONSE_FLAG",
    "STX",
    "VERSION",
    "BadFrame",
    "Command",
    "Frame",
    "FrameDecoder",
    "NakCode",
    "NeedData",
    "encode_frame",
    "is_response",
    "request_of",
    "response_of",
]

STX: Final = 0x02
ETX: Final = 0x03
VERSION: Final = 0x01
HEADER_SIZE: Final = 7  # STX VER LEN(2) SEQ(2) CMD
TRAILER_SIZE: Final = 3  # CRC(2) ETX
OVERHEAD: Final = HEADER_SIZE + TRAILER_SIZE
MAX_BODY_SIZE: Final = 4096
MAX_FRAME_SIZE: Final = MAX_BODY_SIZE + OVERHEAD
MAX_BUFFER: Final = MAX_FRAME_SIZE
"""Upper bound of the bytes a :class:`FrameDecoder` holds of its own (see module docstring)."""
MAX_SEQ: Final = 0xFFFF
RESPONSE_FLAG: Final = 0x80

_HEADER: Final = struct.Struct(">xBHHB")  # skips STX; VER, LEN, SEQ, CMD
_CHECKED_HEAD: Final = struct.Struct(">BHHB")  # VER, LEN, SEQ, CMD: the CRC starts here
_TRAILER: Final = struct.Struct(">HB")  # CRC, ETX
_STX_BYTE: Final = bytes([STX])
# Built once: json.dumps/json.loads with options build a new encoder/decoder on every call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Command(enum.IntEnum):
    """CMD values. A response (or a push acknowledgement) is ``cmd | 0x80``."""

    LOGIN = 0x01
    HEARTBEAT = 0x02
    CARD_PAY = 0x10
    QR_CREATE = 0x11
    QR_CANCEL = 0x12
    SCAN_PAY = 0x13
    QUERY = 0x14
    OFFLINE_UPLOAD = 0x20
    PAY_RESULT = 0x40
    BLACKLIST = 0x41
    PARAMS = 0x42
    TIME_SET = 0x43
    NAK = 0x7F


REQUEST_COMMANDS: Final = frozenset(
    {
        Command.LOGIN,
        Command.HEARTBEAT,
        Command.CARD_PAY,
        Command.QR_CREATE,
        Command.QR_CANCEL,
        Command.SCAN_PAY,
        Command.QUERY,
        Command.OFFLINE_UPLOAD,
    }
)
"""Commands a terminal sends to the edge agent."""

PUSH_COMMANDS: Final = frozenset(
    {Command.PAY_RESULT, Command.BLACKLIST, Command.PARAMS, Command.TIME_SET}
)
"""Commands the edge agent pushes to a terminal."""


class NakCode(enum.StrEnum):
    """``code`` values of a NAK body."""

    BAD_CRC = "BAD_CRC"
    BAD_FRAME = "BAD_FRAME"
    TOO_LONG = "TOO_LONG"
    BAD_JSON = "BAD_JSON"
    BAD_FIELD = "BAD_FIELD"
    UNKNOWN_CMD = "UNKNOWN_CMD"
    NOT_LOGGED_IN = "NOT_LOGGED_IN"


def response_of(cmd: int) -> int:
    """CMD of the response to (or acknowledgement of) ``cmd``."""
    return cmd | RESPONSE_FLAG


def is_response(cmd: int) -> bool:
    """True for a response/acknowledgement CMD (high bit set)."""
    return bool(cmd & RESPONSE_FLAG)


def request_of(cmd: int) -> int:
    """CMD of the request that a response ``cmd`` answers."""
    return cmd & ~RESPONSE_FLAG & 0xFF


@dataclass(frozen=True)
class Frame:
    """One well-formed frame: CRC, ETX, VER and LEN checked, BODY parsed to a JSON object."""

    seq: int
    cmd: int
    body: dict[str, Any]


@dataclass(frozen=True)
class BadFrame:
    """A frame the decoder rejected; answer it with NAK ``code``.

    ``seq`` and ``cmd`` are as read from the header. The decoder reads the whole header before
    judging, so they are always set by it; they stay optional for events built elsewhere.
    """

    seq: int | None
    code: str
    detail: str
    cmd: int | None = None


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA
"""Returned by ``next_event()`` when the buffered bytes hold no further event."""


def encode_frame(frame: Frame) -> bytes:
    """Serialise ``frame``; raise :class:`LocalProtocolError` if it cannot be sent as is."""
    seq, cmd, body = frame.seq, frame.cmd, frame.body
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise LocalProtocolError(f"SEQ must be an int in 0..65535, got {seq!r}")
    if isinstance(cmd, bool) or not isinstance(cmd, int) or not 0 <= cmd <= 0xFF:
        raise LocalProtocolError(f"CMD must be an int in 0..255, got {cmd!r}")
    payload = _encode_body(body)
    checked = _CHECKED_HEAD.pack(VERSION, len(payload), seq, cmd) + payload  # VER .. BODY
    return b"".join((_STX_BYTE, checked, _TRAILER.pack(crc16_modbus(checked), ETX)))


def _encode_body(body: object) -> bytes:
    if not isinstance(body, dict):
        raise LocalProtocolError(f"BODY must be a dict, got {type(body).__name__}")
    if not body:
        return b""
    if not all(isinstance(key, str) for key in body):
        # json.dumps would quietly turn 1 into "1": the peer would see a different body.
        raise LocalProtocolError("BODY keys must be str")
    try:
        text = _ENCODER.encode(body)
        payload = text.encode("utf-8")  # strict: a lone surrogate is our bug, not the peer's
    except (TypeError, ValueError, RecursionError) as exc:
        raise LocalProtocolError(f"BODY is not serialisable as JSON: {exc}") from exc
    if len(payload) > MAX_BODY_SIZE:
        raise LocalProtocolError(f"BODY is {len(payload)} bytes, at most {MAX_BODY_SIZE}")
    return payload


class FrameDecoder:
    """Incremental frame decoder, h11 style: :meth:`receive_data`, then :meth:`next_event`
    until it returns :data:`NEED_DATA`.

    Never raises on any input bytes; see the module docstring for the rules it applies.
    """

    def __init__(self) -> None:
        # _win: bytes taken from the stream, starting at the STX of the candidate frame being
        # assembled (or empty). After a bad frame it still holds that frame's bytes that are to be
        # re-examined. len(_win) <= MAX_BUFFER always: it only grows while its candidate needs
        # more bytes, and no candidate needs more than MAX_FRAME_SIZE.
        self._win = bytearray()
        self._win_pos = 0  # stream offset of _win[0]
        self._chunk = b""  # the caller's last chunk, consumed from _chunk_pos on
        self._chunk_pos = 0
        self._chunk_start = 0  # stream offset of _chunk[0]
        # Candidates starting before this stream offset lie inside a frame already reported bad:
        # their failure is an echo of that one and is not reported again.
        self._quiet_until = 0

    # -- input ---------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Hand the decoder the next chunk received from the peer.

        The previous chunk must have been consumed (``next_event()`` returned ``NEED_DATA``):
        this is what keeps the decoder's memory bounded. Empty ``data`` is a no-op.
        """
        if not data:
            return
        if self._chunk_pos < len(self._chunk):
            raise RuntimeError("call next_event() until NEED_DATA before receive_data() again")
        self._chunk_start += len(self._chunk)
        # Copy only what is not immutable already: a memoryview on the caller's bytearray would
        # stop the caller from resizing it.
        self._chunk = data if isinstance(data, bytes) else bytes(data)
        self._chunk_pos = 0

    @property
    def has_partial_frame(self) -> bool:
        """A frame has started (STX seen) but is not complete yet; valid after ``NEED_DATA``.

        The edge agent closes the connection when this stays true for 10 s.
        """
        return bool(self._win)

    @property
    def buffered_bytes(self) -> int:
        """Bytes the decoder holds of its own; never more than :data:`MAX_BUFFER`."""
        return len(self._win)

    @property
    def unconsumed_bytes(self) -> int:
        """Bytes of the caller's last chunk not looked at yet."""
        return len(self._chunk) - self._chunk_pos

    # -- events --------------------------------------------------------------------------

    def next_event(self) -> Frame | BadFrame | Literal[NeedData.NEED_DATA]:
        """Return the next :class:`Frame` or :class:`BadFrame`, or :data:`NEED_DATA`."""
        while True:
            if not self._win and not self._skip_to_stx():
                return NEED_DATA
            if not self._fill(HEADER_SIZE):
                return NEED_DATA
            ver, length, seq, cmd = _HEADER.unpack_from(self._win)
            event: Frame | BadFrame | None
            if ver != VERSION:
                event = self._reject(
                    HEADER_SIZE, BadFrame(seq, NakCode.BAD_FRAME, f"VER is {ver}, not 1", cmd)
                )
            elif length > MAX_BODY_SIZE:
                detail = f"LEN is {length}, at most {MAX_BODY_SIZE}"
                event = self._reject(HEADER_SIZE, BadFrame(seq, NakCode.TOO_LONG, detail, cmd))
            elif not self._fill(length + OVERHEAD):
                return NEED_DATA
            else:
                event = self._complete_frame(length, seq, cmd)
            if event is not None:
                return event

    def _skip_to_stx(self) -> bool:
        """Drop chunk bytes before the next STX; False when the chunk holds none."""
        index = self._chunk.find(_STX_BYTE, self._chunk_pos)
        if index < 0:
            self._release_chunk()
            return False
        self._chunk_pos = index
        self._win_pos = self._chunk_start + index
        return True

    def _fill(self, size: int) -> bool:
        """Move chunk bytes into the window until it holds ``size`` bytes; False if short."""
        missing = size - len(self._win)
        if missing <= 0:
            return True
        taken = self._chunk[self._chunk_pos : self._chunk_pos + missing]
        self._win += taken
        self._chunk_pos += len(taken)
        if self._chunk_pos == len(self._chunk):
            self._release_chunk()
        return len(taken) == missing

    def _release_chunk(self) -> None:
        # Drop the reference to a consumed chunk so that the caller's bytes can be freed.
        self._chunk_start += len(self._chunk)
        self._chunk, self._chunk_pos = b"", 0

    def _complete_frame(self, length: int, seq: int, cmd: int) -> Frame | BadFrame | None:
        end = HEADER_SIZE + length
        win = self._win
        if win[end + 2] != ETX:
            detail = f"ETX is 0x{win[end + 2]:02X}, not 0x03"
            return self._reject(end + TRAILER_SIZE, BadFrame(seq, NakCode.BAD_FRAME, detail, cmd))
        sent_crc = int.from_bytes(win[end : end + 2], "big")
        crc = crc16_modbus(win[1:end])
        if crc != sent_crc:
            detail = f"CRC is 0x{sent_crc:04X}, computed 0x{crc:04X}"
            return self._reject(end + TRAILER_SIZE, BadFrame(seq, NakCode.BAD_CRC, detail, cmd))
        payload = bytes(win[HEADER_SIZE:end])
        # The CRC proves these boundaries: consume the frame whole, BAD_JSON or not.
        self._discard(end + TRAILER_SIZE)
        body = _decode_body(payload)
        if isinstance(body, str):
            return BadFrame(seq, NakCode.BAD_JSON, body, cmd)
        return Frame(seq, cmd, body)

    def _reject(self, examined: int, event: BadFrame) -> BadFrame | None:
        """Give up the candidate at _win[0]; resynchronise at the next STX after it."""
        echo = self._win_pos < self._quiet_until
        if not echo:
            self._quiet_until = self._win_pos + examined
        self._discard(1)
        return None if echo else event

    def _discard(self, count: int) -> None:
        """Drop ``count`` window bytes, then any bytes up to the next STX left in the window."""
        index = self._win.find(_STX_BYTE, count)
        if index < 0:
            index = len(self._win)
        del self._win[:index]
        self._win_pos += index


def _decode_body(payload: bytes) -> dict[str, Any] | str:
    """The BODY as a dict, or a str saying why it is not a JSON object (-> BAD_JSON)."""
    if not payload:
        return {}  # LEN 0 means {}
    try:
        text = payload.decode("utf-8")  # strict: no replacement characters sneak through
        if text.startswith("\ufeff"):  # json.loads refuses it before parsing; so do we
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _DECODER.decode(text)
    except UnicodeDecodeError as exc:
        return f"BODY is not UTF-8 ({exc.reason} at byte {exc.start})"
    except RecursionError:
        return "BODY nests too deep"
    except ValueError as exc:
        return f"BODY is not JSON ({exc})"[:200]
    if not isinstance(value, dict):
        return f"BODY is a JSON {type(value).__name__}, not an object"
    # Strict UTF-8 decoding lets no surrogate through: one can only come from a \u escape.
    if b"\\u" in payload and _has_lone_surrogate(value):
        # "\ud800" is valid JSON grammar but no Unicode text: it would blow up later when the
        # application encodes the string (SQLite, HTTP, logs), far from here.
        return "BODY has an unpaired surrogate escape"
    return value


def _object_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys are a classic smuggling trick: two parsers may pick different values.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in object")
    return result


def _no_nan(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object_no_duplicates, parse_constant=_no_nan)


def _has_lone_surrogate(value: object) -> bool:
    # Iterative on purpose: a body may nest hundreds of levels deep.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
