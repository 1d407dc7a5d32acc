"""Values the agent keeps on disk or sends on the wire must not change when the code computing
them gets faster: the exactly-once digest stored with every answer (compared after a restart with
answers written by the previous version), and the bytes of an answer frame."""

from __future__ import annotations

import hashlib

from edge_agent.answers import card_answer, digest
from edge_agent.protocol import CardPay, Command, ServerSession


def test_digest_known_answer() -> None:
    expected = hashlib.sha256(b"16|10000001|1250").hexdigest()[:32]
    assert digest(Command.CARD_PAY, "10000001", 1250) == expected
    assert digest(Command.SCAN_PAY, 500, "134567890123456789") == (
        hashlib.sha256(b"19|500|134567890123456789").hexdigest()[:32])


def test_card_pay_answer_frame_bytes() -> None:
    # Built by hand from protocol.md: STX VER LEN SEQ CMD BODY CRC ETX, compact UTF-8 JSON.
    body = card_answer(7, True, "OK", "成功", "消费12.50元", 9750, False)
    text = ('{"txn":7,"ok":true,"code":"OK","msg":"成功","voice":"消费12.50元",'
            '"balance_fen":9750,"offline":false}').encode("utf-8")
    checked = bytes([0x01]) + len(text).to_bytes(2, "big") + (0x1234).to_bytes(2, "big") + bytes([0x90]) + text
    crc = 0xFFFF
    for byte in checked:  # CRC-16/MODBUS bit by bit, independent of the codec
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    expected = b"\x02" + checked + crc.to_bytes(2, "big") + b"\x03"
    session = ServerSession()
    session.accept_login("T0001")
    assert session.respond(CardPay(0x1234, 7, "10000001", 1250, 1), body) == expected
