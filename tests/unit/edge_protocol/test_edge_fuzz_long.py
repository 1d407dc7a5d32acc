"""Longer fuzzing of the decoder and the server session (``make test-long``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.protocol.events import CloseConnection, Login
from edge_agent.protocol.frames import (
    MAX_BUFFER,
    NEED_DATA,
    BadFrame,
    Frame,
    FrameDecoder,
    encode_frame,
)
from edge_agent.protocol.session import ServerSession

from .helpers import raw_frame

PIECES = st.binary(max_size=300) | st.sampled_from(
    [
        b"\x02",
        b"\x02\x01",
        b"\x02\x01\x10\x00",
        raw_frame(1, 0x01, b"{}"),
        raw_frame(2, 0x02, b'{"ts":1,"offline_pending":0}'),
        raw_frame(3, 0x10, b"{}", crc=0),
        encode_frame(Frame(4, 0x01, {"tid": "T", "ts": 1, "nonce": "n", "mac": "ab"})),
    ]
)


@pytest.mark.long
@settings(max_examples=5000, deadline=None)
@given(st.lists(PIECES, max_size=60))
def test_decoder_long_fuzz(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        decoder.receive_data(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            assert isinstance(event, Frame | BadFrame)
            assert decoder.buffered_bytes <= MAX_BUFFER


@pytest.mark.long
@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=60))
def test_session_long_fuzz(chunks: list[bytes]) -> None:
    session = ServerSession()
    for chunk in chunks:
        session.receive_data(chunk)
        while (event := session.next_event()) is not NEED_DATA:
            if isinstance(event, CloseConnection):
                return
            if isinstance(event, Login):
                session.accept_login(event.tid or "x")
        session.data_to_send()
        assert session.buffered_bytes <= MAX_BUFFER
