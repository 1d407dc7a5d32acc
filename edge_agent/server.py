"""The asyncio TCP server of the terminal link: sockets and timers around ``ServerSession``.

One :class:`TerminalConnection` (an ``asyncio.Protocol``: no task and no stream buffer per idle
connection, which keeps an idle link at a few KB) per terminal. Bytes go into the sans-IO
session, drained to NEED_DATA after every chunk as the session requires; NAKs the session decided
are written after each event, in order. LOGIN, HEARTBEAT and push acknowledgements are answered at
once; requests that go to the cloud run as tasks, at most ``max_inflight_per_connection`` at a
time: at that limit the connection stops draining and stops reading, so a terminal that floods
requests is slowed down, not buffered without bound.

One timer for all connections (every ``tick_s``) closes a link that has not logged in within
``login_timeout_s``, has been silent for ``idle_timeout_s``, or has left a frame incomplete for
10 s (protocol.md), and resends unacknowledged pushes every 3 s. A terminal that does not read
what we send (write buffer over 256 KB) is cut off. At most ``max_connections`` links are open;
one more is closed as soon as it is accepted. :meth:`TerminalServer.stop` stops accepting, closes
every link, and waits for the requests in progress (their answers are stored, so the terminals'
repeats after reconnecting get them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from .config import AgentConfig
from .protocol import (
    NEED_DATA,
    CloseConnection,
    Heartbeat,
    LocalProtocolError,
    Login,
    NakReceived,
    PushAck,
    RequestEvent,
    ServerSession,
)
from .protocol.crc import CRC16_IMPLEMENTATION

__all__ = ["LinkApp", "TerminalConnection", "TerminalServer"]

log = logging.getLogger(__name__)

MAX_WRITE_BUFFER = 256 * 1024
READ_CHUNK_HINT = 65536


class LinkApp(Protocol):
    """What the server needs from the application (the agent)."""

    def on_login(self, conn: "TerminalConnection", request: Login) -> None:
        """Check the LOGIN and answer it (conn.accept_login / conn.refuse_login)."""

    def on_heartbeat(self, conn: "TerminalConnection", request: Heartbeat) -> dict[str, Any]:
        """The HEARTBEAT response body."""

    def handle(self, conn: "TerminalConnection", request: RequestEvent) -> Awaitable[dict[str, Any]]:
        """The response body of a request that needs the cloud or the store."""

    def on_push_ack(self, conn: "TerminalConnection", ack: PushAck) -> None:
        """The terminal acknowledged a push."""

    def on_closed(self, conn: "TerminalConnection") -> None:
        """A connection ended (logged in or not)."""


class TerminalConnection(asyncio.Protocol):
    def __init__(self, server: "TerminalServer") -> None:
        self._server = server
        self._config = server.config
        self.session = ServerSession()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        now = server.monotonic()
        self.opened_at = now
        self.last_rx = now
        self.last_seen_wall = server.clock()
        self.offline_pending = 0
        self.push_tags: dict[int, str] = {}  # push SEQ -> the application's tag (event id)
        self._inflight: set[asyncio.Task[None]] = set()
        self._draining_paused = False
        self._reading_paused = False
        self._closed = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if not self._server.register(self):
            log.warning("refusing %s: %d connections already open", self.peer, self._config.max_connections)
            self._closed = True
            transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.last_rx = self._server.monotonic()
        self.last_seen_wall = self._server.clock()
        self.session.receive_data(data)
        self._drain()

    def eof_received(self) -> bool | None:
        self.close("peer closed")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.unregister(self)

    # -- state -------------------------------------------------------------------------------

    @property
    def tid(self) -> str | None:
        return self.session.tid

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # -- output used by the application ------------------------------------------------------

    def respond(self, request: RequestEvent, body: dict[str, Any]) -> None:
        if not self._closed:
            self._send(self.session.respond(request, body))

    def accept_login(self, request: Login, body: dict[str, Any]) -> None:
        self.session.accept_login(request.tid)
        self.respond(request, body)

    def refuse_login(self, request: Login, code: str = "AUTH_FAILED") -> None:
        self._send(self.session.reject_login(request, code))
        self.close("login refused")

    def push(self, cmd: int, body: dict[str, Any], tag: str | None = None) -> int | None:
        """Push a frame now; returns its SEQ, or None when the link cannot take it."""
        if self._closed or not self.session.logged_in or self.session.should_close:
            return None
        try:
            seq, data = self.session.push(cmd, body, now=self._server.monotonic())
        except LocalProtocolError as exc:
            log.warning("push to %s not sent: %s", self.tid, exc)
            return None
        if tag is not None:
            self.push_tags[seq] = tag
        self._send(data)
        return seq

    def close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        log.info("closing %s (%s): %s", self.peer, self.tid, reason)
        if self.transport is not None:
            self.transport.close()  # what was written still goes out first

    # -- internals ---------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if not data or self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if self.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("%s does not read what it is sent: cut off", self.peer)
            self._closed = True
            self.transport.abort()

    def _drain(self) -> None:
        session = self.session
        while not self._closed:
            if len(self._inflight) >= self._config.max_inflight_per_connection:
                self._pause()
                return
            event = session.next_event()
            self._send(session.data_to_send())
            if event is NEED_DATA:
                break
            if isinstance(event, CloseConnection):
                self.close(event.reason)
                return
            self._dispatch(event)
        self._resume()
        if not self._closed and session.incomplete_frame_expired(
                self._server.monotonic(), self._config.incomplete_frame_timeout_s):
            self._send(session.data_to_send())
            self.close("frame left incomplete")

    def _dispatch(self, event: Any) -> None:
        app = self._server.app
        if isinstance(event, Login):
            app.on_login(self, event)
        elif isinstance(event, Heartbeat):
            self.offline_pending = event.offline_pending
            self.respond(event, app.on_heartbeat(self, event))
        elif isinstance(event, PushAck):
            app.on_push_ack(self, event)  # it forgets the tag once the ack is on disk
        elif isinstance(event, NakReceived):
            log.info("%s (%s) sent NAK %s for seq %s: %s", self.peer, self.tid, event.code, event.seq,
                     event.detail)
        else:
            task = asyncio.get_running_loop().create_task(self._serve(event))
            self._inflight.add(task)
            self._server.track(task)  # _serve's own finally forgets it: no done callback per request

    async def _serve(self, request: RequestEvent) -> None:
        try:
            body = await self._server.app.handle(self, request)
            self.respond(request, body)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one failed request must not take the link down
            log.exception("request %s of %s failed; no answer sent (the terminal will repeat it)",
                          type(request).__name__, self.tid)
        finally:
            task = asyncio.current_task()
            self._inflight.discard(task)  # type: ignore[arg-type]
            self._server.untrack(task)  # type: ignore[arg-type]
            if self._draining_paused and not self._closed:
                self._drain()

    def _pause(self) -> None:
        self._draining_paused = True
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        self._draining_paused = False
        if self._reading_paused and self.transport is not None and not self._closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def tick(self, now: float) -> None:
        """Timers of this link (called by the server's single timer)."""
        if self._closed:
            return
        config = self._config
        if not self.session.logged_in and now - self.opened_at >= config.login_timeout_s:
            self.close("no LOGIN in time")
        elif now - self.last_rx >= config.idle_timeout_s:
            self.close("silent for too long")
        elif self.session.incomplete_frame_expired(now, config.incomplete_frame_timeout_s):
            self.close("frame left incomplete")
        else:
            for data in self.session.resend_due(now, config.push_resend_s):
                self._send(data)


class TerminalServer:
    def __init__(self, config: AgentConfig, app: LinkApp, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.app = app
        self.clock = clock
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[TerminalConnection] = set()
        self._by_tid: dict[str, TerminalConnection] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()  # in progress, on any link (even a closed one)
        self.refused_connections = 0

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: TerminalConnection(self), self.config.listen_host, self.config.listen_port,
            reuse_address=True, backlog=1024)
        self._ticker = loop.create_task(self._tick_forever())
        log.info("terminal link listening on %s:%s (frame CRC: %s)", self.config.listen_host, self.port,
                 CRC16_IMPLEMENTATION)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._ticker is not None:
            self._ticker.cancel()
        for conn in list(self._connections):
            conn.close("agent stopping")
        # Requests in progress finish (their answers are stored) even if their link is gone.
        await asyncio.gather(*list(self._requests), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- registry ----------------------------------------------------------------------------

    def track(self, task: asyncio.Task[None]) -> None:
        """A request in progress; the request's coroutine calls :meth:`untrack` when it ends."""
        self._requests.add(task)

    def untrack(self, task: asyncio.Task[None]) -> None:
        self._requests.discard(task)

    def register(self, conn: TerminalConnection) -> bool:
        if len(self._connections) >= self.config.max_connections:
            self.refused_connections += 1
            return False
        self._connections.add(conn)
        return True

    def unregister(self, conn: TerminalConnection) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        tid = conn.tid
        if tid is not None and self._by_tid.get(tid) is conn:
            del self._by_tid[tid]
        self.app.on_closed(conn)

    def bind_tid(self, conn: TerminalConnection, tid: str) -> None:
        """``conn`` is now terminal ``tid``'s link; an older link of that terminal is closed."""
        old = self._by_tid.get(tid)
        self._by_tid[tid] = conn
        if old is not None and old is not conn:
            old.close("the terminal logged in on a new connection")

    def connection_of(self, tid: str) -> TerminalConnection | None:
        conn = self._by_tid.get(tid)
        return conn if conn is not None and not conn.closed else None

    def logged_in(self) -> list[TerminalConnection]:
        return [conn for conn in self._by_tid.values() if not conn.closed]

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            now = self.monotonic()
            for conn in list(self._connections):
                try:
                    conn.tick(now)
                except Exception:  # noqa: BLE001 - one link's bug must not stop the timer
                    log.exception("timer of %s failed", conn.peer)
                    conn.close("internal error")
