"""CRC-16/MODBUS, the frame check of the terminal protocol.

Parameters (the catalogue name CRC-16/MODBUS): width 16, reflected polynomial 0xA001
(0x8005 bit-reversed), initial value 0xFFFF, input and output reflected, no final XOR.
Check value: ``crc16_modbus(b"123456789") == 0x4B37``.

The protocol sends the CRC big-endian like every other integer of the frame (unlike Modbus RTU,
which sends the low byte first); that is the frame codec's business, this module only computes
the number.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CRC16_INIT", "CRC16_TABLE", "crc16_modbus"]

CRC16_INIT: Final = 0xFFFF
_POLY_REFLECTED: Final = 0xA001


def _make_table() -> tuple[int, ...]:
    # table[i] is the CRC register after shifting the 8 bits of i out of it, so that the main loop
    # handles a whole byte with one lookup instead of eight conditional shifts.
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


CRC16_TABLE: Final[tuple[int, ...]] = _make_table()


def crc16_modbus(data: bytes | bytearray | memoryview, crc: int = CRC16_INIT) -> int:
    """Return the CRC-16/MODBUS of ``data``.

    ``crc`` lets a caller continue a running CRC over several pieces:
    ``crc16_modbus(b, crc16_modbus(a)) == crc16_modbus(a + b)``.
    """
    table = CRC16_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
