"""FrameDecoder: streaming, fragmentation, garbage, every malformed frame of protocol.md."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.protocol.frames import (
    MAX_BUFFER,
    MAX_FRAME_SIZE,
    NEED_DATA,
    BadFrame,
    Command,
    Frame,
    FrameDecoder,
    NakCode,
    encode_frame,
)

from .helpers import decode_all, drain, feed, raw_frame, split

GOOD = [
    Frame(1, Command.LOGIN, {"tid": "T0001", "ts": 1700000000, "nonce": "n", "mac": "ab"}),
    Frame(2, Command.HEARTBEAT, {}),
    Frame(3, Command.CARD_PAY, {"txn": 7, "card": "10000001", "amount_fen": 1250, "ts": 1}),
    Frame(0xFFFF, Command.PAY_RESULT, {"msg": "支付成功", "voice": "微信收款12.50元"}),
    Frame(0x0202, 0x82, {"seq_is_two_stx_bytes": True}),
]
STREAM = b"".join(encode_frame(f) for f in GOOD)

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def bad(seq: int, code: str, cmd: int | None = None) -> tuple[int, str, int | None]:
    return (seq, code, cmd)


def summary(events: list[object]) -> list[object]:
    """Frames as is, BadFrames without their human-readable detail."""
    return [(e.seq, e.code, e.cmd) if isinstance(e, BadFrame) else e for e in events]


# -- streaming and fragmentation ---------------------------------------------------------------


def test_whole_stream_in_one_chunk() -> None:
    assert decode_all(STREAM) == GOOD


def test_one_byte_at_a_time() -> None:
    decoder = FrameDecoder()
    events = feed(decoder, [bytes([b]) for b in STREAM])
    assert events == GOOD
    assert decoder.buffered_bytes == 0 and not decoder.has_partial_frame


@FAST
@given(st.lists(st.integers(0, len(STREAM)), max_size=30))
def test_split_and_merged_at_arbitrary_points(cuts: list[int]) -> None:
    assert feed(FrameDecoder(), split(STREAM, cuts)) == GOOD


@FAST
@given(
    st.lists(
        st.tuples(
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFF),
            st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=20), max_size=4),
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.integers(0, 2000), max_size=20),
)
def test_any_frames_round_trip_through_any_fragmentation(
    specs: list[tuple[int, int, dict[str, object]]], cuts: list[int]
) -> None:
    frames = [Frame(seq, cmd, body) for seq, cmd, body in specs]
    stream = b"".join(encode_frame(f) for f in frames)
    assert feed(FrameDecoder(), split(stream, cuts)) == frames


def test_bytearray_and_memoryview_chunks() -> None:
    decoder = FrameDecoder()
    chunk = bytearray(STREAM)
    decoder.receive_data(chunk)
    chunk.clear()  # the decoder must not pin (or see) the caller's mutable buffer
    assert drain(decoder) == GOOD
    assert feed(FrameDecoder(), [memoryview(STREAM)]) == GOOD


def test_empty_chunk_is_a_no_op() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(STREAM[:5])
    decoder.receive_data(b"")  # allowed even with data pending
    assert feed(decoder, [b"", STREAM[5:]]) == GOOD


def test_new_chunk_before_the_last_is_consumed_is_refused() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(STREAM)
    assert decoder.next_event() == GOOD[0]
    with pytest.raises(RuntimeError, match="NEED_DATA"):
        decoder.receive_data(b"more")
    assert drain(decoder) == GOOD[1:]
    decoder.receive_data(b"more")  # fine now


def test_partial_frame_is_visible() -> None:
    decoder = FrameDecoder()
    data = encode_frame(GOOD[2])
    assert feed(decoder, [b"noise"]) == [] and not decoder.has_partial_frame
    assert feed(decoder, [data[:1]]) == [] and decoder.has_partial_frame
    assert feed(decoder, [data[1:-1]]) == [] and decoder.has_partial_frame
    assert feed(decoder, [data[-1:]]) == [GOOD[2]] and not decoder.has_partial_frame


# -- garbage and resynchronisation -------------------------------------------------------------


def test_garbage_before_stx_is_skipped() -> None:
    assert decode_all(b"\x00\xffhello\x03\x01" + STREAM) == GOOD


def test_garbage_between_frames_is_skipped() -> None:
    a, b = encode_frame(GOOD[0]), encode_frame(GOOD[1])
    assert decode_all(a + b"\x00\x01\x03\xfe" + b) == GOOD[:2]


def test_lone_stx_before_a_frame_costs_one_bad_frame_and_loses_nothing() -> None:
    # The stray STX takes the good frame's first 6 bytes as its header:
    # 02 | 02 | 01 00 | 34 00 | 03  ->  VER 2 (BAD_FRAME), "SEQ" 0x3400, "CMD" 0x03.
    # The decoder then resumes right after the stray STX and finds the good frame.
    assert encode_frame(GOOD[2])[:6] == bytes.fromhex("020100340003")
    events = decode_all(b"\x02" + encode_frame(GOOD[2]))
    assert summary(events) == [bad(0x3400, NakCode.BAD_FRAME, 0x03), GOOD[2]]


def test_bad_frame_then_good_frame_split_byte_by_byte() -> None:
    damaged = raw_frame(9, 0x10, b'{"txn":1}', crc=0)
    stream = damaged + encode_frame(GOOD[2])
    events = feed(FrameDecoder(), [bytes([b]) for b in stream])
    assert summary(events) == [bad(9, NakCode.BAD_CRC, 0x10), GOOD[2]]


def test_good_frame_inside_a_truncated_frame_is_recovered() -> None:
    # A frame cut short (its sender died mid-frame): the next good frame is read as its body
    # and fails the ETX/CRC check; the decoder rescans from after the truncated frame's STX.
    truncated = raw_frame(4, 0x10, b'{"txn":1,"card":"1"}')[:12]
    stream = truncated + encode_frame(GOOD[2]) + b"\x00" * 60
    events = decode_all(stream)
    assert summary(events) == [bad(4, NakCode.BAD_FRAME, 0x10), GOOD[2]]


def test_overstated_len_does_not_swallow_following_frames() -> None:
    damaged = raw_frame(4, 0x10, b'{"txn":1}', length=200)[:16]
    following = b"".join(encode_frame(f) for f in GOOD)
    filler = b"\x00" * 200
    events = decode_all(damaged + following + filler)
    assert [e for e in events if isinstance(e, Frame)] == GOOD
    assert summary([e for e in events if isinstance(e, BadFrame)]) == [
        bad(4, NakCode.BAD_FRAME, 0x10)
    ]


def test_one_damaged_frame_gives_one_bad_frame_even_with_stx_bytes_inside() -> None:
    # SEQ 0x0202, LEN 0x0002 and CMD 0x02 put STX bytes inside the header: the false starts
    # found when rescanning are echoes of the one reported error, not new bad frames.
    damaged = raw_frame(0x0202, 0x02, b"{}", crc=0x0202)
    events = decode_all(damaged + encode_frame(GOOD[1]))
    assert summary(events) == [bad(0x0202, NakCode.BAD_CRC, 0x02), GOOD[1]]


def test_stream_of_stx_bytes_keeps_reporting() -> None:
    # Echo suppression must not hide a peer that sends nothing but garbage: each report covers
    # the 7 bytes it examined, the next STX after them is a new bad frame.
    events = decode_all(b"\x02" * 70)
    assert len(events) == 10
    assert all(isinstance(e, BadFrame) and e.code == NakCode.BAD_FRAME for e in events)


# -- every malformed frame of protocol.md ------------------------------------------------------

MALFORMED = {
    "wrong CRC": (raw_frame(7, 0x02, b"{}", crc=0x1234), NakCode.BAD_CRC),
    "CRC bytes swapped (little-endian)": (
        raw_frame(7, 0x02, b"", crc=int.from_bytes(raw_frame(7, 0x02, b"")[-3:-1], "little")),
        NakCode.BAD_CRC,
    ),
    "wrong ETX": (raw_frame(7, 0x02, b"{}", etx=0x04), NakCode.BAD_FRAME),
    "VER 0": (raw_frame(7, 0x02, b"{}", ver=0), NakCode.BAD_FRAME),
    "VER 2": (raw_frame(7, 0x02, b"{}", ver=2), NakCode.BAD_FRAME),
    "LEN 4097": (raw_frame(7, 0x02, b"{}", length=4097), NakCode.TOO_LONG),
    "LEN 65535": (raw_frame(7, 0x02, b"{}", length=0xFFFF), NakCode.TOO_LONG),
    "body not JSON": (raw_frame(7, 0x02, b"{not json"), NakCode.BAD_JSON),
    "body JSON list": (raw_frame(7, 0x02, b"[1,2]"), NakCode.BAD_JSON),
    "body JSON string": (raw_frame(7, 0x02, b'"{}"'), NakCode.BAD_JSON),
    "body JSON null": (raw_frame(7, 0x02, b"null"), NakCode.BAD_JSON),
    "body invalid UTF-8": (raw_frame(7, 0x02, b'{"a":"\xff\xfe"}'), NakCode.BAD_JSON),
    "body overlong UTF-8": (raw_frame(7, 0x02, b'{"a":"\xc0\xaf"}'), NakCode.BAD_JSON),
    "body UTF-8 BOM": (raw_frame(7, 0x02, "\ufeff{}"), NakCode.BAD_JSON),
    "body NaN": (raw_frame(7, 0x02, b'{"a":NaN}'), NakCode.BAD_JSON),
    "body Infinity": (raw_frame(7, 0x02, b'{"a":-Infinity}'), NakCode.BAD_JSON),
    "body duplicate key": (raw_frame(7, 0x02, b'{"a":1,"a":2}'), NakCode.BAD_JSON),
    "body lone surrogate": (raw_frame(7, 0x02, b'{"a":["\\udc00"]}'), NakCode.BAD_JSON),
    "body trailing data": (raw_frame(7, 0x02, b"{}{}"), NakCode.BAD_JSON),
    "body nested 2000 deep": (
        raw_frame(7, 0x02, b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}"),
        NakCode.BAD_JSON,
    ),
}


@pytest.mark.parametrize(("data", "code"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frame_is_reported_with_seq_then_stream_recovers(data: bytes, code: str) -> None:
    tail = encode_frame(GOOD[1])
    events = decode_all(data + tail)
    assert summary(events) == [bad(7, code, 0x02), GOOD[1]]
    detail = events[0].detail
    assert isinstance(detail, str) and 0 < len(detail) <= 200


def test_too_long_is_judged_on_the_header_without_waiting_for_the_body() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(raw_frame(3, 0x10, b"", length=5000)[:7])
    events = drain(decoder)
    assert summary(events) == [bad(3, NakCode.TOO_LONG, 0x10)]
    assert decoder.buffered_bytes == 0


def test_huge_declared_frame_streamed_in_megabytes_stays_bounded() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(raw_frame(3, 0x10, b"", length=4096)[:7])
    assert drain(decoder) == []
    for _ in range(256):  # 1 MiB of "body", 4 KiB at a time
        decoder.receive_data(b"A" * 4096)
        drain(decoder)
        assert decoder.buffered_bytes <= MAX_BUFFER
    assert decoder.buffered_bytes <= MAX_FRAME_SIZE


def test_megabytes_of_garbage_in_one_chunk_stay_bounded() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(bytes(range(256)) * 4096)  # 1 MiB with an STX every 256 bytes
    count = 0
    while (event := decoder.next_event()) is not NEED_DATA:
        assert isinstance(event, BadFrame)
        assert decoder.buffered_bytes <= MAX_BUFFER
        count += 1
    assert count > 0 and decoder.buffered_bytes <= MAX_BUFFER


# -- property: nothing but the declared events, never above the bound --------------------------


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.binary(max_size=64)
        | st.sampled_from(
            [b"\x02", b"\x02\x01", b"\x02\x01\x00", b"\x03", STREAM[:20], encode_frame(GOOD[1])]
        ),
        max_size=40,
    )
)
def test_random_bytes_never_raise_and_never_exceed_the_bound(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        decoder.receive_data(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            assert isinstance(event, Frame | BadFrame)
            assert decoder.buffered_bytes <= MAX_BUFFER
        assert decoder.buffered_bytes <= MAX_BUFFER
        assert decoder.unconsumed_bytes == 0


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.integers(0, 10_000), st.integers(0, 255))
def test_a_corrupted_byte_never_loses_the_following_good_frame(
    body: bytes, where: int, xor: int
) -> None:
    # pymodbus-style: a transport that corrupts one byte of the first frame.
    first = bytearray(raw_frame(1, 0x10, body))
    first[where % len(first)] ^= xor or 0xFF
    follower = encode_frame(Frame(2, Command.HEARTBEAT, {"ts": 1}))
    events = decode_all(bytes(first) + follower + b"\x00" * 4200)
    assert events[-1] == Frame(2, Command.HEARTBEAT, {"ts": 1})
