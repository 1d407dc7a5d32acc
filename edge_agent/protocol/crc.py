"""CRC-16/MODBUS, the frame check of the terminal protocol.

Parameters (the catalogue name CRC-16/MODBUS): width 16, reflected polynomial 0xA001
(0x8005 bit-reversed), initial value 0xFFFF, input and output reflected, no final XOR.
Check value: ``crc16_modbus(b"123456789") == 0x4B37``.

The protocol sends the CRC big-endian like every other integer of the frame (unlike Modbus RTU,
which sends the low byte first); that is the frame codec's business, this module only computes
the number.

Two implementations of the same function, ``f(data, crc=0xFFFF) -> int``:

- :func:`crc16_modbus_table`, pure Python, one table lookup per byte: 6 to 13 us for a CARD_PAY
  frame on the bench machine, and a swipe needs two (the request in, the answer out).
- the ``modbus`` function of the optional package ``fastcrc`` (compiled; wheels for CPython 3.11
  on Linux x86_64 and aarch64): 0.1 to 0.2 us for the same frame.

:func:`crc16_modbus` is the compiled one when ``fastcrc`` imports, else the table: the agent runs
the same without the wheel, only slower. Both are checked against the same known answers in the
tests; :data:`CRC16_IMPLEMENTATION` says which one is in use.
"""

from __future__ import annotations

from typing import Final, Protocol

__all__ = [
    "CRC16_IMPLEMENTATION",
    "CRC16_INIT",
    "CRC16_TABLE",
    "Crc16",
    "crc16_modbus",
    "crc16_modbus_native",
    "crc16_modbus_table",
]

CRC16_INIT: Final = 0xFFFF
_POLY_REFLECTED: Final = 0xA001

class Crc16(Protocol):
    """``(data, crc=0xFFFF) -> crc``: the CRC of ``data``, continuing the running CRC ``crc``."""

    def __call__(self, data: bytes | bytearray | memoryview, crc: int = CRC16_INIT, /) -> int: ...


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


def crc16_modbus_table(data: bytes | bytearray | memoryview, crc: int = CRC16_INIT) -> int:
    """Return the CRC-16/MODBUS of ``data`` (pure Python, the fallback).

    ``crc`` lets a caller continue a running CRC over several pieces:
    ``crc16_modbus(b, crc16_modbus(a)) == crc16_modbus(a + b)``.
    """
    table = CRC16_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def _native() -> Crc16 | None:
    try:
        from fastcrc import crc16  # optional: see the module docstring
    except ImportError:
        return None
    function: Crc16 = crc16.modbus  # (data, initial): same parameters, same order
    return function


crc16_modbus_native: Final[Crc16 | None] = _native()
"""The compiled implementation, or None when ``fastcrc`` is not installed."""

crc16_modbus: Final[Crc16] = (
    crc16_modbus_native if crc16_modbus_native is not None else crc16_modbus_table
)
"""Return the CRC-16/MODBUS of ``data`` (``crc``: continue a running CRC); the fastest one here."""

CRC16_IMPLEMENTATION: Final = "fastcrc" if crc16_modbus_native is not None else "table"
