"""Sans-IO implementation of the terminal wire protocol (shared/protocol.md): bytes in, events out.

Modules, each small and free of I/O and clocks:

- :mod:`.crc`: CRC-16/MODBUS (compiled when the optional ``fastcrc`` is installed).
- :mod:`.frames`: frame layout, :func:`encode_frame`, incremental :class:`FrameDecoder`.
- :mod:`.validation`: required fields of every BODY, both directions.
- :mod:`.events`: typed frozen events (requests, push acks, NAK received, close).
- :mod:`.session`: :class:`ServerSession`, the edge agent's side of one connection.
- :mod:`.terminal`: :class:`TerminalSession`, the terminal's side (for the simulator).
- :mod:`.auth`: the LOGIN MAC.
"""

from .auth import login_mac, verify_login_mac
from .crc import crc16_modbus
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .events import (
    CardPay,
    CloseConnection,
    Heartbeat,
    Login,
    NakReceived,
    OfflineRecord,
    OfflineUpload,
    PushAck,
    QrCancel,
    QrCreate,
    Query,
    RequestEvent,
    ScanPay,
)
from .frames import (
    MAX_BODY_SIZE,
    MAX_BUFFER,
    MAX_FRAME_SIZE,
    NEED_DATA,
    BadFrame,
    Command,
    Frame,
    FrameDecoder,
    NakCode,
    NeedData,
    encode_frame,
    response_of,
)
from .session import (
    INCOMPLETE_FRAME_TIMEOUT,
    MAX_BAD_FRAMES_IN_A_ROW,
    PUSH_RESEND_INTERVAL,
    PendingPush,
    ServerEvent,
    ServerSession,
)
from .terminal import Push, Response, TerminalSession
from .validation import check_outgoing, parse_request

__all__ = [
    "INCOMPLETE_FRAME_TIMEOUT",
    "MAX_BAD_FRAMES_IN_A_ROW",
    "MAX_BODY_SIZE",
    "MAX_BUFFER",
    "MAX_FRAME_SIZE",
    "NEED_DATA",
    "PUSH_RESEND_INTERVAL",
    "BadFrame",
    "CardPay",
    "CloseConnection",
    "Command",
    "Frame",
    "FrameDecoder",
    "Heartbeat",
    "LocalProtocolError",
    "Login",
    "NakCode",
    "NakReceived",
    "NeedData",
    "OfflineRecord",
    "OfflineUpload",
    "PendingPush",
    "ProtocolError",
    "Push",
    "PushAck",
    "QrCancel",
    "QrCreate",
    "Query",
    "RemoteProtocolError",
    "RequestEvent",
    "Response",
    "ScanPay",
    "ServerEvent",
    "ServerSession",
    "TerminalSession",
    "check_outgoing",
    "crc16_modbus",
    "encode_frame",
    "login_mac",
    "parse_request",
    "response_of",
    "verify_login_mac",
]
