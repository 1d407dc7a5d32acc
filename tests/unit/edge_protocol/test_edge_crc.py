import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.protocol import crc as crc_module
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


# -- both implementations, the same known answers --------------------------------------------------
# The compiled one (fastcrc) is a dev requirement: if it is missing, these tests fail rather than skip.

IMPLEMENTATIONS = {"table": crc_module.crc16_modbus_table, "native": crc_module.crc16_modbus_native}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def implementation(request: pytest.FixtureRequest) -> crc_module.Crc16:
    function = IMPLEMENTATIONS[request.param]
    assert function is not None, "fastcrc is not installed (pip install -r requirements-dev.txt)"
    return function


def test_the_compiled_one_is_used_when_installed() -> None:
    assert crc_module.CRC16_IMPLEMENTATION == "fastcrc"
    assert crc_module.crc16_modbus is crc_module.crc16_modbus_native


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0x4B37),  # the catalogue check value (protocol.md)
        (b"", 0xFFFF),
        (bytes.fromhex("010000000102"), 0x9B81),  # HEARTBEAT seq 1 LEN 0 (frames.py docstring)
        (b"\x00", 0x40BF),
        (b"\xff" * 4096, crc_bitwise(b"\xff" * 4096)),
    ],
)
def test_known_answers(implementation: crc_module.Crc16, data: bytes, expected: int) -> None:
    assert implementation(data) == expected
    assert implementation(bytearray(data)) == expected
    assert implementation(memoryview(b"x" + data)[1:]) == expected


def test_register_step_by_step(implementation: crc_module.Crc16) -> None:
    crc = 0xFFFF
    registers = []
    for byte in bytes.fromhex("010000000102"):
        crc = implementation(bytes([byte]), crc)
        registers.append(crc)
    assert registers == [0x807E, 0x2000, 0x0020, 0xD801, 0x00D8, 0x9B81]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_both_agree_with_the_bitwise_reference(data: bytes, start: int) -> None:
    native = crc_module.crc16_modbus_native
    assert native is not None
    assert crc_module.crc16_modbus_table(data) == native(data) == crc_bitwise(data)
    assert crc_module.crc16_modbus_table(data, start) == native(data, start)


def test_the_agent_runs_without_the_compiled_crc() -> None:
    # A fresh interpreter where "import fastcrc" fails, as on a machine without the wheel.
    script = (
        "import sys; sys.modules['fastcrc'] = None\n"
        "from edge_agent.protocol import crc, Frame, FrameDecoder, encode_frame\n"
        "data = encode_frame(Frame(1, 0x02, {}))\n"
        "decoder = FrameDecoder(); decoder.receive_data(data)\n"
        "print(crc.CRC16_IMPLEMENTATION, data.hex(), decoder.next_event())\n"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=root).stdout
    assert out.split(" ", 2)[:2] == ["table", "020100000001029b8103"]
    assert "Frame(seq=1, cmd=2, body={})" in out
