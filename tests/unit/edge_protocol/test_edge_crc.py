from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.protocol.crc import CRC16_TABLE, crc16_modbus

from .helpers import crc_bitwise


def test_check_value() -> None:
    # The catalogue check value of CRC-16/MODBUS, quoted in protocol.md.
    assert crc16_modbus(b"123456789") == 0x4B37


def test_empty_input_is_the_initial_value() -> None:
    assert crc16_modbus(b"") == 0xFFFF


def test_table_known_entries() -> None:
    # Entry 1: 0x0001 shifted right once hits the polynomial, then seven plain shifts...
    assert len(CRC16_TABLE) == 256
    assert CRC16_TABLE[0] == 0x0000
    assert CRC16_TABLE[1] == 0xC0C1
    assert CRC16_TABLE[128] == 0xA001
    assert CRC16_TABLE[255] == 0x4040


def test_heartbeat_header_register_step_by_step() -> None:
    # VER LEN SEQ CMD of HEARTBEAT seq 1, LEN 0; register after each byte (bitwise reference):
    # 01 -> 0x807E, 00 -> 0x2000, 00 -> 0x0020, 00 -> 0xD801, 01 -> 0x00D8, 02 -> 0x9B81
    data = bytes.fromhex("010000000102")
    registers = []
    crc = 0xFFFF
    for byte in data:
        crc = crc16_modbus(bytes([byte]), crc)
        registers.append(crc)
    assert registers == [0x807E, 0x2000, 0x0020, 0xD801, 0x00D8, 0x9B81]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_table_matches_bitwise_reference(data: bytes) -> None:
    assert crc16_modbus(data) == crc_bitwise(data)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_running_crc_over_pieces(a: bytes, b: bytes) -> None:
    assert crc16_modbus(b, crc16_modbus(a)) == crc16_modbus(a + b)


def test_accepts_bytearray_and_memoryview() -> None:
    assert crc16_modbus(bytearray(b"123456789")) == 0x4B37
    assert crc16_modbus(memoryview(b"0123456789")[1:]) == 0x4B37
