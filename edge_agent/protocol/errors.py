"""Exceptions of the protocol package, split the way h11 splits them.

- :class:`RemoteProtocolError`: the *peer* sent something the contract forbids. Never raised for
  a bad frame out of :class:`~edge_agent.protocol.frames.FrameDecoder` (that returns a
  ``BadFrame`` event instead, because a bad frame is routine on a serial-ish link and is answered
  with a NAK, not unwound through the stack); raised by the field validation, carrying the NAK
  code to answer with.
- :class:`LocalProtocolError`: *we* tried to send something invalid (a body over 4096 bytes, a
  response without a required field, a push before login). That is a bug on our side and must
  never turn into bytes on the wire.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(Exception):
    """Base class of the package's protocol errors; never raised itself."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class LocalProtocolError(ProtocolError):
    """We were about to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow; ``code`` is the NAK code to answer."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"
