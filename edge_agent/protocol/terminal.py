"""Terminal side of a connection, sans-IO: the base of the terminal simulator.

It reuses the same :class:`FrameDecoder` and the same schemas as the server side, so the
simulator checks the edge agent against protocol.md while it talks to it:

- :meth:`TerminalSession.request` builds a request frame with the terminal's own SEQ counter
  and keeps it as outstanding until its response arrives; :meth:`retransmit` gives the very same
  bytes again (same SEQ, same ``txn``), which is what a terminal does after 3 s without answer.
- :meth:`next_event` returns :class:`Response`, :class:`Push`, :class:`NakReceived`, or a
  :class:`BadFrame` for anything that breaks the contract (bad framing, or a response or push
  whose BODY lacks a required field: ``BAD_FIELD``; an unexpected CMD: ``UNKNOWN_CMD``). What to
  do with a BadFrame is the simulator's choice; :meth:`nak` builds the NAK.
- :meth:`ack` acknowledges a push with the body protocol.md expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from .auth import login_mac
from .errors import LocalProtocolError
from .events import NakReceived
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
from .session import nak_frame
from .validation import body_problem, check_outgoing

__all__ = ["OutstandingRequest", "Push", "Response", "TerminalEvent", "TerminalSession"]


@dataclass(frozen=True)
class OutstandingRequest:
    seq: int
    cmd: Command
    body: dict[str, Any]
    data: bytes


@dataclass(frozen=True)
class Response:
    """The edge agent answered request ``seq``; ``cmd`` is the *request's* CMD.

    ``request`` is the outstanding request it answers, or None for a response to nothing we
    are waiting for (e.g. the second answer after a retransmission).
    """

    seq: int
    cmd: int
    body: dict[str, Any]
    request: OutstandingRequest | None


@dataclass(frozen=True)
class Push:
    seq: int
    cmd: Command
    body: dict[str, Any]


TerminalEvent = Response | Push | NakReceived | BadFrame

# The field of a push that its ack echoes.
_ACK_FIELD: dict[int, str | None] = {
    Command.PAY_RESULT: "txn",
    Command.BLACKLIST: "ver",
    Command.PARAMS: "ver",
    Command.TIME_SET: None,
}


class TerminalSession:
    """One terminal's end of a connection. Never reads a clock; never raises on input bytes."""

    def __init__(self, *, initial_seq: int = 0) -> None:
        if not 0 <= initial_seq <= 0xFFFF:
            raise ValueError("initial_seq must be in 0..65535")
        self._decoder = FrameDecoder()
        self._next_seq = initial_seq
        self._outstanding: dict[int, OutstandingRequest] = {}

    @property
    def outstanding(self) -> Mapping[int, OutstandingRequest]:
        """Requests sent and not answered yet, by SEQ (read-only view)."""
        return MappingProxyType(self._outstanding)

    @property
    def has_partial_frame(self) -> bool:
        return self._decoder.has_partial_frame

    # -- output ----------------------------------------------------------------------------

    def request(self, cmd: int, body: dict[str, Any]) -> tuple[int, bytes]:
        """A request frame with the next SEQ; raises LocalProtocolError if BODY breaks the
        contract. ``body`` is checked, so build deliberately bad frames with ``encode_frame``."""
        if cmd not in REQUEST_COMMANDS:
            raise LocalProtocolError(f"CMD 0x{cmd:02X} is not a request")
        check_outgoing(cmd, body)
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFF
        data = encode_frame(Frame(seq, cmd, body))
        self._outstanding[seq] = OutstandingRequest(seq, Command(cmd), dict(body), data)
        return seq, data

    def login(self, key: bytes | str, tid: str, ts: int, nonce: str) -> tuple[int, bytes]:
        """A LOGIN request signed with ``key``."""
        mac = login_mac(key, tid, ts, nonce)
        return self.request(Command.LOGIN, {"tid": tid, "ts": ts, "nonce": nonce, "mac": mac})

    def retransmit(self, seq: int) -> bytes:
        """The outstanding request ``seq`` again, byte for byte."""
        return self._outstanding[seq].data

    def ack(self, push: Push, body: dict[str, Any] | None = None) -> bytes:
        """The acknowledgement of ``push``: CMD | 0x80, its SEQ, and by default the echoed
        ``txn``/``ver`` (``{}`` for TIME_SET)."""
        if body is None:
            field = _ACK_FIELD[push.cmd]
            body = {} if field is None else {field: push.body[field]}
        check_outgoing(response_of(push.cmd), body)
        return encode_frame(Frame(push.seq, response_of(push.cmd), body))

    def nak(self, bad: BadFrame) -> bytes:
        """The NAK answering ``bad``; empty when ``bad`` was itself a NAK (no NAK ping-pong)."""
        return b"" if bad.cmd == Command.NAK else nak_frame(bad.seq, bad.code, bad.detail)

    # -- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        self._decoder.receive_data(data)

    def next_event(self) -> TerminalEvent | Literal[NeedData.NEED_DATA]:
        frame = self._decoder.next_event()
        if frame is NEED_DATA or isinstance(frame, BadFrame):
            return frame
        cmd = frame.cmd
        if cmd == Command.NAK:
            code, detail = frame.body.get("code"), frame.body.get("detail")
            return NakReceived(
                frame.seq,
                code if isinstance(code, str) else "",
                detail if isinstance(detail, str) else "",
            )
        known = cmd in PUSH_COMMANDS or (is_response(cmd) and request_of(cmd) in REQUEST_COMMANDS)
        if not known:
            return BadFrame(frame.seq, NakCode.UNKNOWN_CMD, f"CMD 0x{cmd:02X} is unexpected", cmd)
        problem = body_problem(cmd, frame.body)
        if problem:
            return BadFrame(frame.seq, NakCode.BAD_FIELD, problem, cmd)
        if cmd in PUSH_COMMANDS:
            return Push(frame.seq, Command(cmd), frame.body)
        request = self._outstanding.get(frame.seq)
        if request is not None and response_of(request.cmd) == cmd:
            del self._outstanding[frame.seq]
        else:
            request = None
        return Response(frame.seq, request_of(cmd), frame.body, request)
