"""A lean HTTP/1.1 client for the cloud calls: keep-alive connections over asyncio, h11 for the protocol.

Why not httpx's transport: measured on the bench machine, a signed POST through
``httpx.AsyncHTTPTransport`` cost about 1.1 ms of CPU (anyio cancel scopes, tracing, the pool's
bookkeeping, the request and response models, and two socket writes per request), which was most
of an online swipe's CPU. The agent makes one kind of call (a POST of a small JSON body to one
host), so this client does only that: one h11 state machine per connection (h11 is the HTTP/1.1
engine httpx itself uses, so parsing and framing are a well-kept library's, not ours), the whole
request written with one ``write``, and the idle connections kept in a list.

Errors are :class:`HttpError` (connection refused or lost, a malformed answer); the caller bounds
every call with its own deadline (``asyncio.timeout``). A connection is reused only after a
complete exchange; one that was interrupted (timeout, cancellation, error) is closed, so a late
answer can never be read as the answer to the next request. A reused connection that the server
closed while idle fails the request with :class:`HttpError`: the caller's retry (every call is
idempotent) goes out on a fresh connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

__all__ = ["ConnectError", "Http1Pool", "HttpError", "HttpReply"]

READ_CHUNK = 65536
MAX_RESPONSE = 4 << 20  # a cloud answer is a few KB; more is not an edge API answer


class HttpError(Exception):
    """No HTTP answer: the connection failed, was lost, or the answer was not HTTP/1.1."""


class ConnectError(HttpError):
    """No connection could be made (refused, unreachable, timed out): the request never left."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.idle_since = time.monotonic()

    def usable(self, keepalive_s: float) -> bool:
        return (not self.writer.is_closing() and not self.reader.at_eof()
                and time.monotonic() - self.idle_since < keepalive_s)

    def close(self) -> None:
        self.writer.close()


class Http1Pool:
    """Keep-alive connections to one origin (``http://`` or ``https://``)."""

    def __init__(self, base_url: str, *, connect_timeout_s: float, keepalive_s: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"cloud_url must be http(s)://host[:port]: {base_url!r}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        default_port = 443 if self._tls else 80
        self._host_header = (self._host if self._port == default_port else f"{self._host}:{self._port}").encode()
        self._ssl = (ssl_context or ssl.create_default_context()) if self._tls else None
        self._connect_timeout_s = connect_timeout_s
        self._keepalive_s = keepalive_s
        self._idle: list[_Connection] = []
        self.connections_opened = 0

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def post(self, path: str, headers: list[tuple[str, str]], body: bytes) -> HttpReply:
        conn = await self._take()
        try:
            reply = await self._exchange(conn, path, headers, body)
        except BaseException:
            conn.close()  # interrupted mid-exchange: never reused
            raise
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()  # the server asked to close (Connection: close) or the exchange is odd
        return reply

    async def _take(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be timed out
            if conn.usable(self._keepalive_s):
                return conn
            conn.close()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._tls else None)
        except TimeoutError:
            raise ConnectError(f"connect to {self._host}:{self._port} timed out") from None
        except OSError as exc:
            raise ConnectError(f"connect to {self._host}:{self._port}: {exc}") from None
        self.connections_opened += 1
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, path: str, headers: list[tuple[str, str]],
                        body: bytes) -> HttpReply:
        state = conn.h11
        try:
            request = h11.Request(method="POST", target=(self._prefix + path).encode(), headers=[
                (b"host", self._host_header), (b"content-length", str(len(body)).encode()),
                *((name.encode(), value.encode()) for name, value in headers)])
            conn.writer.write(state.send(request) + state.send(h11.Data(data=body)) + state.send(h11.EndOfMessage()))
            status = 0
            chunks: list[bytes] = []
            size = 0
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    data = await conn.reader.read(READ_CHUNK)
                    state.receive_data(data)  # b"" is EOF: h11 then raises or ends the message
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > MAX_RESPONSE:
                        raise HttpError("answer too large")
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    return HttpReply(status, b"".join(chunks))
                elif isinstance(event, h11.ConnectionClosed):
                    raise HttpError("connection closed before the answer")
                # InformationalResponse (1xx): skipped; the final answer follows.
        except h11.ProtocolError as exc:
            raise HttpError(f"not an HTTP/1.1 answer: {exc}") from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise HttpError(f"connection lost: {exc}") from None
