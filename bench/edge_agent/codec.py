"""CPU of the protocol package per swipe, alone: no sockets, no asyncio, no cloud, no SQLite.

    .venv/bin/python -m bench.edge_agent.codec

One swipe as the agent's session sees it: a CARD_PAY request frame in (decode, CRC check, JSON,
schema check, typed event), its answer out (schema check, JSON, CRC, frame), on one logged-in
``ServerSession`` (the same code path as the agent, minus the socket). Prints microseconds per swipe
for the CRC in use (``fastcrc`` when installed), then again in an interpreter that cannot import
``fastcrc`` (the pure-Python table), and one CRC alone.
Best of several repeats: the machine is shared, the minimum is the least disturbed figure.
"""

from __future__ import annotations

import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

from edge_agent.answers import card_answer
from edge_agent.protocol import NEED_DATA, CardPay, Command, Frame, ServerSession, encode_frame
from edge_agent.protocol import crc as crc_module

ROOT = Path(__file__).resolve().parents[2]
REQUEST = {"txn": 1000001, "card": "10000001", "amount_fen": 1250, "ts": 1764150000}
ANSWER = card_answer(1000001, True, "OK", "成功", "消费12.50元", 987654, False)


def one_swipe(session: ServerSession, data: bytes) -> Callable[[], bytes]:
    def swipe() -> bytes:
        session.receive_data(data)
        event = session.next_event()
        assert isinstance(event, CardPay)
        out = session.respond(event, ANSWER)
        assert session.next_event() is NEED_DATA
        return out

    return swipe


def best_us(function: Callable[[], object], number: int = 20000, repeat: int = 7) -> float:
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def measure() -> dict[str, float]:
    session = ServerSession()
    session.accept_login("T0001")
    data = encode_frame(Frame(1, Command.CARD_PAY, REQUEST))
    figures = {f"swipe ({crc_module.CRC16_IMPLEMENTATION} CRC)": best_us(one_swipe(session, data))}
    checked = data[1:-3]
    figures[f"one CRC of the request ({crc_module.CRC16_IMPLEMENTATION})"] = best_us(
        lambda: crc_module.crc16_modbus(checked))
    figures["one CRC of the request (table)"] = best_us(lambda: crc_module.crc16_modbus_table(checked))
    return figures


def main(argv: list[str] | None = None) -> int:
    child = "--swipe-only" in (argv if argv is not None else sys.argv[1:])
    for name, value in list(measure().items())[: 1 if child else None]:
        print(f"{name:40} {value:7.2f} us", flush=True)
    if crc_module.crc16_modbus_native is not None and not child:
        # The same swipe where fastcrc is absent (a fresh interpreter that cannot import it).
        script = ("import sys; sys.modules['fastcrc'] = None\n"
                  "from bench.edge_agent.codec import main\nmain(['--swipe-only'])")
        subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
