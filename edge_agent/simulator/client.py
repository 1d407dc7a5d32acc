"""An asyncio terminal: the protocol.md client used by the simulator, the tests and the benches.

Built on the sans-IO :class:`~edge_agent.protocol.TerminalSession`, so every response and push
the agent sends is checked against protocol.md as it arrives. Like a real terminal it resends a
request, byte for byte (same SEQ, same txn), when no answer came within ``retransmit_s`` (3 s), and
acknowledges pushes (unless told not to, to test the agent's resending).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from ..protocol import NEED_DATA, BadFrame, Command, NakReceived, Push, Response, TerminalSession, login_mac

__all__ = ["NakError", "TerminalClient"]

log = logging.getLogger(__name__)
_txns = itertools.count(int(time.time() * 1000) % 10**12)


class NakError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class TerminalClient:
    def __init__(self, host: str, port: int, tid: str, key: str, *, auto_ack: bool = True,
                 retransmit_s: float = 3.0, clock: Callable[[], float] = time.time) -> None:
        self.host, self.port, self.tid, self.key = host, port, tid, key
        self.auto_ack = auto_ack
        self.retransmit_s = retransmit_s
        self.clock = clock
        self.session = TerminalSession()
        self.pushes: asyncio.Queue[Push] = asyncio.Queue()
        self.bad_frames: list[BadFrame] = []
        self.naks: list[NakReceived] = []
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @staticmethod
    def next_txn() -> int:
        return next(_txns)

    async def connect(self) -> "TerminalClient":
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.get_running_loop().create_task(self._read_forever())
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> "TerminalClient":
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def send_raw(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    # -- requests ----------------------------------------------------------------------------

    async def request(self, cmd: int, body: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
        """Send a request; resend the same frame every ``retransmit_s`` until answered or
        ``timeout``. Raises NakError on a NAK, TimeoutError, ConnectionError when the link ends."""
        seq, data = self.session.request(cmd, body)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = future
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self.send_raw(data)
                    done, _ = await asyncio.wait({future}, timeout=self.retransmit_s)
                    if done:
                        return future.result()
                    if self.closed.is_set():
                        raise ConnectionError("the agent closed the link")
        finally:
            self._waiting.pop(seq, None)

    async def login(self, *, ts: int | None = None, nonce: str | None = None, key: str | None = None,
                    timeout: float = 10.0) -> dict[str, Any]:
        ts = int(self.clock()) if ts is None else ts
        nonce = nonce or secrets.token_hex(8)
        mac = login_mac(key or self.key, self.tid, ts, nonce)
        return await self.request(Command.LOGIN, {"tid": self.tid, "ts": ts, "nonce": nonce, "mac": mac},
                                  timeout=timeout)

    async def heartbeat(self, offline_pending: int = 0, ts: int | None = None) -> dict[str, Any]:
        ts = int(self.clock()) if ts is None else ts
        return await self.request(Command.HEARTBEAT, {"ts": ts, "offline_pending": offline_pending})

    async def card_pay(self, txn: int, card: str, amount_fen: int, *, ts: int | None = None,
                       timeout: float = 10.0) -> dict[str, Any]:
        ts = int(self.clock()) if ts is None else ts
        return await self.request(Command.CARD_PAY, {"txn": txn, "card": card, "amount_fen": amount_fen, "ts": ts},
                                  timeout=timeout)

    async def qr_create(self, txn: int, amount_fen: int) -> dict[str, Any]:
        return await self.request(Command.QR_CREATE, {"txn": txn, "amount_fen": amount_fen})

    async def qr_cancel(self, txn: int) -> dict[str, Any]:
        return await self.request(Command.QR_CANCEL, {"txn": txn})

    async def scan_pay(self, txn: int, amount_fen: int, auth_code: str, *, timeout: float = 30.0) -> dict[str, Any]:
        return await self.request(Command.SCAN_PAY, {"txn": txn, "amount_fen": amount_fen, "auth_code": auth_code},
                                  timeout=timeout)

    async def query(self, txn: int) -> dict[str, Any]:
        return await self.request(Command.QUERY, {"txn": txn})

    async def offline_upload(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.request(Command.OFFLINE_UPLOAD, {"records": records})

    async def next_push(self, cmd: int | None = None, timeout: float = 5.0) -> Push:
        """The next push (of ``cmd`` when given; others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                push = await self.pushes.get()
                if cmd is None or push.cmd == cmd:
                    return push

    def ack(self, push: Push) -> None:
        self.send_raw(self.session.ack(push))

    # -- input -------------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        assert self._reader is not None
        try:
            while data := await self._reader.read(65536):
                self.session.receive_data(data)
                while (event := self.session.next_event()) is not NEED_DATA:
                    self._on_event(event)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("the agent closed the link"))

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Response):
            future = self._waiting.get(event.seq)
            if future is not None and not future.done():
                future.set_result(event.body)
        elif isinstance(event, Push):
            if self.auto_ack:
                self.ack(event)
            self.pushes.put_nowait(event)
        elif isinstance(event, NakReceived):
            self.naks.append(event)
            future = self._waiting.get(event.seq)
            if future is not None and not future.done():
                future.set_exception(NakError(event.code, event.detail))
        elif isinstance(event, BadFrame):
            self.bad_frames.append(event)
            log.warning("bad frame from the agent: %s", event)
