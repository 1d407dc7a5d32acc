"""Server side of one terminal connection: a sans-IO state machine in the style of h11.

The caller owns the socket and the clock::

    session = ServerSession()
    while data := await reader.read(65536):
        session.receive_data(data)
        while (event := session.next_event()) is not NEED_DATA:
            writer.write(session.data_to_send())        # NAKs, in order
            if isinstance(event, CloseConnection):
                break                                   # ... and close the socket
            writer.write(handle(event))                 # e.g. session.respond(event, {...})
        writer.write(session.data_to_send())
        if session.incomplete_frame_expired(loop.time()) or session.should_close:
            break
    # and on a 1 s timer: incomplete_frame_expired(now), resend_due(now)

Where the bytes go, by design:

- What the session decides *on its own* (NAKs for bad frames, bad fields, unknown commands,
  NOT_LOGGED_IN) is queued and collected with :meth:`data_to_send`. At most one NAK is queued per
  event pulled, so draining after every :meth:`next_event` keeps the queue tiny and in order.
- What the *application* asks for (:meth:`respond`, :meth:`reject_login`, :meth:`push`,
  :meth:`resend_due`) is returned as bytes, like h11's ``send()``: the caller writes it.

Only valid requests come out of :meth:`next_event`: LOGIN at any time, everything else only once
the application has called :meth:`accept_login` (it checks the MAC, ``ts`` and nonce itself, with
:func:`~edge_agent.protocol.auth.verify_login_mac`, before pulling the next event). A refused
login (``ok: false``) ends the session, as protocol.md requires.

Counting bad frames: every frame answered with a NAK (bad framing, BAD_JSON, BAD_FIELD,
UNKNOWN_CMD, NOT_LOGGED_IN) counts; any frame that is not NAKed resets the count. At
:data:`MAX_BAD_FRAMES_IN_A_ROW` the session ends. A NAK received is never answered with a NAK,
so two peers can never NAK each other forever.

Order of judgement for a well-formed frame: NAK received -> push acknowledgement -> unknown CMD
(``UNKNOWN_CMD``, even before login: there is no such command to log in for) -> not logged in
(``NOT_LOGGED_IN``, before the fields are looked at) -> fields (``BAD_FIELD``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from .auth import login_mac, verify_login_mac
from .errors import LocalProtocolError, RemoteProtocolError
from .events import CloseConnection, Login, NakReceived, PushAck, RequestEvent
from .frames import (
    NEED_DATA,
    PUSH_COMMANDS,
    REQUEST_COMMANDS,
    BadFrame,
    Command,
    Frame,
    FrameDecoder,
    NakCode,
    NeedData,
    encode_frame,
    is_response,
    request_of,
    response_of,
)
from .validation import body_problem, check_outgoing, parse_request

__all__ = [
    "INCOMPLETE_FRAME_TIMEOUT",
    "MAX_BAD_FRAMES_IN_A_ROW",
    "MAX_UNACKED_PUSHES",
    "PUSH_RESEND_INTERVAL",
    "PendingPush",
    "ServerEvent",
    "ServerSession",
    "login_mac",
    "nak_frame",
    "verify_login_mac",
]

MAX_BAD_FRAMES_IN_A_ROW: Final = 8
INCOMPLETE_FRAME_TIMEOUT: Final = 10.0
PUSH_RESEND_INTERVAL: Final = 3.0
MAX_UNACKED_PUSHES: Final = 256
"""Default cap of pushes awaiting an ack: pushes are ours, but a terminal that never acks must not
make us hold an ever-growing list. The durable outbox is the application's, not the session's."""
NAK_DETAIL_MAX: Final = 200

# Acks echo a field of the push; an ack whose field differs is a stale one (for example from a
# previous connection whose seq counter also started at 0) and must not clear the push.
_ACK_ECHO: Final = {Command.PAY_RESULT: "txn", Command.BLACKLIST: "ver", Command.PARAMS: "ver"}

ServerEvent = RequestEvent | PushAck | NakReceived | CloseConnection


@dataclass(frozen=True)
class PendingPush:
    """A push not acknowledged yet; ``data`` is resent unchanged (same SEQ) until it is."""

    seq: int
    cmd: Command
    body: dict[str, Any]
    data: bytes
    last_sent: float | None


def nak_frame(seq: int | None, code: str, detail: str) -> bytes:
    """A NAK frame; ``seq`` None (unreadable) is sent as 0."""
    body = {"code": str(code), "detail": detail[:NAK_DETAIL_MAX]}
    return encode_frame(Frame(0 if seq is None else seq, Command.NAK, body))


class ServerSession:
    """State of one terminal connection as seen by the edge agent. Never reads a clock."""

    def __init__(
        self, *, initial_push_seq: int = 0, max_unacked_pushes: int = MAX_UNACKED_PUSHES
    ) -> None:
        if not 0 <= initial_push_seq <= 0xFFFF:
            raise ValueError("initial_push_seq must be in 0..65535")
        if not 1 <= max_unacked_pushes <= 0xFFFF:
            raise ValueError("max_unacked_pushes must be in 1..65535")  # leaves a free seq
        self._decoder = FrameDecoder()
        self._outbox = bytearray()
        self._tid: str | None = None
        self._bad_in_a_row = 0
        self._close_reason: str | None = None
        self._next_push_seq = initial_push_seq
        self._max_unacked = max_unacked_pushes
        self._unacked: dict[int, PendingPush] = {}
        # Decoder events pulled so far, and (that count, time) when the current partial frame
        # was first seen: a new event means a new partial frame, whose 10 s start afresh.
        self._events_pulled = 0
        self._partial_seen: tuple[int, float] | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def logged_in(self) -> bool:
        return self._tid is not None

    @property
    def tid(self) -> str | None:
        """The terminal id accepted by :meth:`accept_login`, None before."""
        return self._tid

    @property
    def should_close(self) -> bool:
        return self._close_reason is not None

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    @property
    def bad_frames_in_a_row(self) -> int:
        return self._bad_in_a_row

    @property
    def has_partial_frame(self) -> bool:
        """A frame has started and is not complete (meaningful once NEED_DATA was returned)."""
        return self._decoder.has_partial_frame

    @property
    def buffered_bytes(self) -> int:
        """Bytes held by the decoder; at most :data:`~edge_agent.protocol.frames.MAX_BUFFER`."""
        return self._decoder.buffered_bytes

    # -- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the terminal; drain :meth:`next_event` to NEED_DATA before the next
        chunk. Ignored once the session is closing: nothing more will be read from the peer."""
        if self._close_reason is None:
            self._decoder.receive_data(data)

    def next_event(self) -> ServerEvent | Literal[NeedData.NEED_DATA]:
        """The next valid request, push ack or received NAK; NEED_DATA; or, once the session
        must end, :class:`CloseConnection` (every time it is asked again)."""
        while self._close_reason is None:
            frame = self._decoder.next_event()
            if frame is NEED_DATA:
                return NEED_DATA
            self._events_pulled += 1
            if isinstance(frame, BadFrame):
                self._nak(frame.seq, frame.code, frame.detail, frame.cmd)
                continue
            event = self._handle(frame)
            if event is not None:
                return event
        return CloseConnection(self._close_reason)

    def data_to_send(self) -> bytes:
        """NAK bytes the session produced since the last call, in order."""
        if not self._outbox:
            return b""  # the usual case, asked after every event
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def incomplete_frame_expired(
        self, now: float, timeout: float = INCOMPLETE_FRAME_TIMEOUT
    ) -> bool:
        """True (and the session ends) when one started frame has been incomplete for
        ``timeout`` seconds.

        The session has no clock: the seconds count from the first call that sees the partial
        frame, so call it right after draining each chunk (that call starts the count) and on a
        timer (that call ends it). Bytes trickling into the same frame do not restart the count;
        a frame completed or reported bad does. False rescans of a bad frame's own bytes do not
        either, so a peer cannot buy time with them.
        """
        if self._close_reason is not None:
            return False
        if not self._decoder.has_partial_frame:
            self._partial_seen = None
            return False
        if self._partial_seen is None or self._partial_seen[0] != self._events_pulled:
            self._partial_seen = (self._events_pulled, now)
            return False
        if now - self._partial_seen[1] < timeout:
            return False
        self._close(f"frame incomplete for {timeout:g} s")
        return True

    # -- login -----------------------------------------------------------------------------

    def accept_login(self, tid: str) -> None:
        """The application verified the LOGIN; requests of this terminal are let through now."""
        if not isinstance(tid, str) or not tid:
            raise LocalProtocolError("tid must be a non-empty str")
        self._tid = tid

    def reject_login(self, request: Login, code: str = "AUTH_FAILED") -> bytes:
        """The refusal response for ``request``; the session ends (protocol.md)."""
        return self.respond(request, {"ok": False, "code": code})

    # -- output ----------------------------------------------------------------------------

    def respond(self, request: RequestEvent, body: dict[str, Any]) -> bytes:
        """The response frame to ``request``: SEQ echoed, CMD | 0x80, BODY checked against
        protocol.md (:class:`LocalProtocolError` if a required field is missing)."""
        cmd = response_of(request.CMD)
        check_outgoing(cmd, body)
        if isinstance(request, Login) and body["ok"] and not self.logged_in:
            raise LocalProtocolError("call accept_login() before answering a LOGIN with ok")
        data = encode_frame(Frame(request.seq, cmd, body))
        if isinstance(request, Login) and not body["ok"]:
            self._tid = None
            self._close("login refused")
        return data

    def push(
        self, cmd: int, body: dict[str, Any], *, now: float | None = None
    ) -> tuple[int, bytes]:
        """A push frame with the session's next SEQ, remembered until the terminal acks it.

        ``now`` is when the caller sends it (for :meth:`resend_due`); None lets the first
        ``resend_due`` call start the 3 s.
        """
        if cmd not in PUSH_COMMANDS:
            raise LocalProtocolError(f"CMD 0x{cmd:02X} is not a push")
        if not self.logged_in or self._close_reason is not None:
            raise LocalProtocolError("push needs a logged-in, open session")
        if len(self._unacked) >= self._max_unacked:
            raise LocalProtocolError(f"{len(self._unacked)} pushes are still unacknowledged")
        check_outgoing(cmd, body)
        seq = self._allocate_push_seq()
        data = encode_frame(Frame(seq, cmd, body))
        self._unacked[seq] = PendingPush(seq, Command(cmd), dict(body), data, now)
        return seq, data

    def unacked_pushes(self) -> list[PendingPush]:
        """Pushes awaiting their ack, oldest first."""
        return list(self._unacked.values())

    def resend_due(self, now: float, interval: float = PUSH_RESEND_INTERVAL) -> list[bytes]:
        """The frames of unacked pushes last sent ``interval`` or more ago; marks them sent."""
        due = []
        for seq, pending in self._unacked.items():
            if pending.last_sent is not None and now - pending.last_sent < interval:
                continue
            if pending.last_sent is not None:
                due.append(pending.data)
            self._unacked[seq] = replace(pending, last_sent=now)
        return due

    # -- internals -------------------------------------------------------------------------

    def _handle(self, frame: Frame) -> ServerEvent | None:
        cmd = frame.cmd
        if cmd == Command.NAK:
            self._bad_in_a_row = 0
            code, detail = frame.body.get("code"), frame.body.get("detail")
            return NakReceived(
                frame.seq,
                code if isinstance(code, str) else "",
                detail if isinstance(detail, str) else "",
            )
        if is_response(cmd) and request_of(cmd) in PUSH_COMMANDS:
            return self._handle_ack(frame)
        if cmd not in REQUEST_COMMANDS:
            self._nak(frame.seq, NakCode.UNKNOWN_CMD, f"CMD 0x{cmd:02X} is unknown", cmd)
            return None
        if cmd != Command.LOGIN and not self.logged_in:
            self._nak(frame.seq, NakCode.NOT_LOGGED_IN, "LOGIN first", cmd)
            return None
        try:
            event = parse_request(frame)
        except RemoteProtocolError as exc:
            self._nak(frame.seq, exc.code, exc.detail, cmd)
            return None
        self._bad_in_a_row = 0
        return event

    def _handle_ack(self, frame: Frame) -> PushAck | None:
        if not self.logged_in:
            self._nak(frame.seq, NakCode.NOT_LOGGED_IN, "LOGIN first", frame.cmd)
            return None
        problem = body_problem(frame.cmd, frame.body)
        if problem:
            self._nak(frame.seq, NakCode.BAD_FIELD, problem, frame.cmd)
            return None
        self._bad_in_a_row = 0
        pending = self._unacked.get(frame.seq)
        if pending is None or response_of(pending.cmd) != frame.cmd:
            return None  # a duplicate or stale ack: nothing is waiting for it
        echo = _ACK_ECHO.get(pending.cmd)
        if echo is not None and echo in pending.body and frame.body[echo] != pending.body[echo]:
            return None
        del self._unacked[frame.seq]
        return PushAck(frame.seq, pending.cmd, frame.body, pending.body)

    def _nak(self, seq: int | None, code: str, detail: str, cmd: int | None) -> None:
        """Queue the NAK for a bad frame (unless it was a NAK) and count it."""
        self._bad_in_a_row += 1
        if cmd != Command.NAK:  # never NAK a NAK
            self._outbox += nak_frame(seq, code, detail)
        if self._bad_in_a_row >= MAX_BAD_FRAMES_IN_A_ROW:
            self._close(f"{self._bad_in_a_row} bad frames in a row")

    def _close(self, reason: str) -> None:
        if self._close_reason is None:
            self._close_reason = reason

    def _allocate_push_seq(self) -> int:
        # Wraps at 65536 and skips a SEQ still awaiting its ack, so that an ack is unambiguous.
        # Terminates: fewer than 65536 pushes can be pending (max_unacked_pushes <= 65535).
        while True:
            seq = self._next_push_seq
            self._next_push_seq = (seq + 1) & 0xFFFF
            if seq not in self._unacked:
                return seq
