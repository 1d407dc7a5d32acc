"""Known-answer vectors: each frame below was built from the layout in protocol.md by a separate
script (literal JSON text, bit-by-bit CRC), not by the codec under test."""

from __future__ import annotations

import json

import pytest

from edge_agent.protocol.errors import LocalProtocolError
from edge_agent.protocol.frames import (
    MAX_BODY_SIZE,
    MAX_FRAME_SIZE,
    Command,
    Frame,
    encode_frame,
    response_of,
)

from .helpers import decode_all, raw_frame

MAC = "3e620b9f37f3e0dbe392b7e5bad6e83aa893c3d4b958cec3806edb8d68d3b0a0"

# (name, SEQ, CMD, BODY as compact JSON text, expected frame as hex)
VECTORS = [
    ("heartbeat_empty", 0x0001, 0x02, "", "020100000001029b8103"),
    (
        "login",
        0x0000,
        0x01,
        '{"tid":"T0001","ts":1700000000,"nonce":"abc","mac":"' + MAC + '"}',
        "020100760000017b22746964223a225430303031222c227473223a313730303030303030302c226e6f6e6365"
        "223a22616263222c226d6163223a223365363230623966333766336530646265333932623765356261643665"
        "3833616138393363336434623935386365633338303665646238643638643362306130227d42e803",
    ),
    (
        "heartbeat",
        0x0002,
        0x02,
        '{"ts":1700000000,"offline_pending":0}',
        "020100250002027b227473223a313730303030303030302c226f66666c696e655f70656e64696e67223a30"
        "7dc37b03",
    ),
    (
        "card_pay",
        0x0003,
        0x10,
        '{"txn":1,"card":"10000001","amount_fen":1250,"ts":1700000000}',
        "0201003d0003107b2274786e223a312c2263617264223a223130303030303031222c22616d6f756e745f6665"
        "6e223a313235302c227473223a313730303030303030307d544503",
    ),
    (
        "qr_create",
        0x0004,
        0x11,
        '{"txn":2,"amount_fen":1250}',
        "0201001b0004117b2274786e223a322c22616d6f756e745f66656e223a313235307dcb6803",
    ),
    ("qr_cancel", 0x0005, 0x12, '{"txn":2}', "020100090005127b2274786e223a327d549003"),
    (
        "scan_pay",
        0x0006,
        0x13,
        '{"txn":3,"amount_fen":100,"auth_code":"134567890123456789"}',
        "0201003b0006137b2274786e223a332c22616d6f756e745f66656e223a3130302c22617574685f636f6465"
        "223a22313334353637383930313233343536373839227d10cc03",
    ),
    ("query", 0x0007, 0x14, '{"txn":3}', "020100090007147b2274786e223a337d637a03"),
    (
        "offline_upload",
        0x0008,
        0x20,
        '{"records":[{"txn":4,"card":"10000002","amount_fen":500,"ts":1700000000}]}',
        "0201004a0008207b227265636f726473223a5b7b2274786e223a342c2263617264223a2231303030303030"
        "32222c22616d6f756e745f66656e223a3530302c227473223a313730303030303030307d5d7d6c9403",
    ),
    (
        "login_ok",
        0x0000,
        0x81,
        '{"ok":true,"server_time":1700000001,"merchant_name":"演示食堂","params_ver":3,'
        '"blacklist_ver":7}',
        "020100640000817b226f6b223a747275652c227365727665725f74696d65223a31373030303030303031"
        "2c226d65726368616e745f6e616d65223a22e6bc94e7a4bae9a39fe5a082222c22706172616d735f766572"
        "223a332c22626c61636b6c6973745f766572223a377de99103",
    ),
    (
        "card_pay_response",
        0x0003,
        0x90,
        '{"txn":1,"ok":true,"code":"OK","msg":"支付成功","voice":"消费12.50元",'
        '"balance_fen":8750,"offline":false}',
        "020100700003907b2274786e223a312c226f6b223a747275652c22636f6465223a224f4b222c226d736722"
        "3a22e694afe4bb98e68890e58a9f222c22766f696365223a22e6b688e8b4b931322e3530e58583222c2262"
        "616c616e63655f66656e223a383735302c226f66666c696e65223a66616c73657de48e03",
    ),
    (
        "pay_result",
        0x1234,
        0x40,
        '{"txn":2,"order_id":"Q20231115000001","status":"PAID","amount_fen":1250,'
        '"channel":"wechat","msg":"支付成功","voice":"微信收款12.50元"}',
        "0201008f1234407b2274786e223a322c226f726465725f6964223a22513230323331313135303030303031"
        "222c22737461747573223a2250414944222c22616d6f756e745f66656e223a313235302c226368616e6e65"
        "6c223a22776563686174222c226d7367223a22e694afe4bb98e68890e58a9f222c22766f696365223a22e5"
        "beaee4bfa1e694b6e6acbe31322e3530e58583227d95d803",
    ),
    ("pay_result_ack", 0x1234, 0xC0, '{"txn":2}', "020100091234c07b2274786e223a327df3f603"),
    (
        "blacklist",
        0xFFFF,
        0x41,
        '{"ver":8,"full":false,"add":["10000009"],"remove":[]}',
        "02010035ffff417b22766572223a382c2266756c6c223a66616c73652c22616464223a5b22313030303030"
        "3039225d2c2272656d6f7665223a5b5d7d699403",
    ),
    (
        "params",
        0x0100,
        0x42,
        '{"ver":4,"mode":"fixed","fixed_amount_fen":800}',
        "0201002f0100427b22766572223a342c226d6f6465223a226669786564222c2266697865645f616d6f756e"
        "745f66656e223a3830307d6d7e03",
    ),
    (
        "time_set",
        0x0101,
        0x43,
        '{"server_time":1700000000}',
        "0201001a0101437b227365727665725f74696d65223a313730303030303030307d8b8b03",
    ),
    ("time_set_ack", 0x0101, 0xC3, "", "020100000101c3cb1103"),
    (
        "nak",
        0x0009,
        0x7F,
        '{"code":"BAD_CRC","detail":"CRC mismatch"}',
        "0201002a00097f7b22636f6465223a224241445f435243222c2264657461696c223a22435243206d69736d"
        "61746368227dac7c03",
    ),
]


def test_heartbeat_with_empty_body_derived_by_hand() -> None:
    # STX 02 | VER 01 | LEN 00 00 (empty body, protocol.md: LEN 0 means {}) | SEQ 00 01 |
    # CMD 02 | CRC over 01 00 00 00 01 02 = 0x9B81 (see test_edge_crc), high byte first | ETX 03
    assert encode_frame(Frame(1, Command.HEARTBEAT, {})) == bytes.fromhex(
        "02 01 0000 0001 02 9b81 03"
    )


@pytest.mark.parametrize(
    ("name", "seq", "cmd", "text", "expected"), VECTORS, ids=[v[0] for v in VECTORS]
)
def test_encode_known_answer(name: str, seq: int, cmd: int, text: str, expected: str) -> None:
    body = json.loads(text) if text else {}
    assert encode_frame(Frame(seq, cmd, body)).hex() == expected


@pytest.mark.parametrize(
    ("name", "seq", "cmd", "text", "expected"), VECTORS, ids=[v[0] for v in VECTORS]
)
def test_decode_known_answer(name: str, seq: int, cmd: int, text: str, expected: str) -> None:
    body = json.loads(text) if text else {}
    assert decode_all(bytes.fromhex(expected)) == [Frame(seq, cmd, body)]


def test_vectors_cover_every_command_and_response() -> None:
    cmds = {v[2] for v in VECTORS}
    assert set(Command) <= cmds
    assert {response_of(Command.LOGIN), response_of(Command.PAY_RESULT)} <= cmds


def test_crc_is_sent_big_endian() -> None:
    frame = encode_frame(Frame(1, Command.HEARTBEAT, {}))
    assert frame[-3:-1] == (0x9B81).to_bytes(2, "big")


def test_empty_body_decodes_from_len_zero_and_from_braces() -> None:
    assert decode_all(raw_frame(5, 0x02, b"")) == [Frame(5, 0x02, {})]
    assert decode_all(raw_frame(5, 0x02, b"{}")) == [Frame(5, 0x02, {})]


def test_body_of_exactly_4096_bytes_is_allowed() -> None:
    filler = "x" * (MAX_BODY_SIZE - len('{"p":""}'))
    data = encode_frame(Frame(1, Command.PARAMS, {"p": filler}))
    assert len(data) == MAX_FRAME_SIZE
    assert decode_all(data) == [Frame(1, Command.PARAMS, {"p": filler})]


def test_body_over_4096_bytes_is_a_local_error() -> None:
    # 4095 ASCII bytes of JSON + one 3-byte character: over the limit in bytes, not characters.
    filler = "x" * (MAX_BODY_SIZE - len('{"p":""}') - 1) + "元"
    with pytest.raises(LocalProtocolError, match="4096"):
        encode_frame(Frame(1, Command.PARAMS, {"p": filler}))


@pytest.mark.parametrize(
    "frame",
    [
        Frame(-1, 0x02, {}),
        Frame(65536, 0x02, {}),
        Frame(True, 0x02, {}),
        Frame(1, 256, {}),
        Frame(1, -1, {}),
        Frame(1, 0x02, []),  # type: ignore[arg-type]
        Frame(1, 0x02, {1: "a"}),  # type: ignore[dict-item]
        Frame(1, 0x02, {"a": float("nan")}),
        Frame(1, 0x02, {"a": object()}),
        Frame(1, 0x02, {"a": "\ud800"}),
    ],
    ids=[
        "seq<0",
        "seq>65535",
        "seq-bool",
        "cmd>255",
        "cmd<0",
        "list",
        "int-key",
        "nan",
        "object",
        "surrogate",
    ],
)
def test_unsendable_frames_are_local_errors(frame: Frame) -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(frame)


def test_chinese_text_is_utf8_not_escaped() -> None:
    data = encode_frame(Frame(1, Command.PAY_RESULT, {"msg": "支付成功"}))
    assert "支付成功".encode() in data
    assert b"\\u" not in data
