"""Test helpers for the protocol package: an independent frame builder and stream drivers.

``raw_frame`` builds frames straight from the layout of protocol.md with a bit-by-bit CRC, so
that tests of the codec do not check the codec against itself, and so that it can build every
malformed frame (wrong VER, LEN, CRC, ETX, raw body bytes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge_agent.protocol.events import CloseConnection
from edge_agent.protocol.frames import NEED_DATA, BadFrame, Frame, FrameDecoder


def crc_bitwise(data: bytes) -> int:
    """CRC-16/MODBUS the slow, obvious way (reference for the table-driven one)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def raw_frame(
    seq: int,
    cmd: int,
    body: bytes | str = b"",
    *,
    ver: int = 1,
    length: int | None = None,
    crc: int | None = None,
    etx: int = 0x03,
) -> bytes:
    """A frame byte for byte; any field can be forced to a wrong value."""
    payload = body.encode("utf-8") if isinstance(body, str) else body
    declared = len(payload) if length is None else length
    middle = bytes([ver]) + declared.to_bytes(2, "big") + seq.to_bytes(2, "big") + bytes([cmd])
    middle += payload
    check = crc_bitwise(middle) if crc is None else crc
    return b"\x02" + middle + check.to_bytes(2, "big") + bytes([etx])


def drain(decoder: Any) -> list[Any]:
    """All events up to NEED_DATA, or up to and including a CloseConnection (which a session
    repeats forever once it is closing). Works for FrameDecoder and the sessions."""
    events = []
    while (event := decoder.next_event()) is not NEED_DATA:
        events.append(event)
        if isinstance(event, CloseConnection):
            break
    return events


def feed(decoder: Any, chunks: Iterable[bytes]) -> list[Any]:
    """Feed chunks one after the other, draining after each, as a server loop does."""
    events: list[Any] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        events.extend(drain(decoder))
    return events


def decode_all(data: bytes) -> list[Frame | BadFrame]:
    decoder = FrameDecoder()
    return feed(decoder, [data])


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (an in-memory transport that fragments)."""
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return [piece for piece in pieces if piece]
