"""A lean HTTP/1.1 client for the cloud calls: keep-alive connections over asyncio, the answers
parsed by httptools (llhttp, the parser of Node.js, in C).

Why not httpx's transport: measured on the bench machine, a signed POST through
``httpx.AsyncHTTPTransport`` cost about 1.1 ms of CPU (anyio cancel scopes, tracing, the pool's
bookkeeping, the request and response models, and two socket writes per request), which was most
of an online swipe's CPU. The agent makes one kind of call (a POST of a small JSON body to one
host), so this client does only that. The request is a few lines we write ourselves (our own
header names and values, checked for line breaks); the answer, which comes from the network, is
parsed by a well-kept parser, not by code of ours. It was h11 until the bench showed h11 at about
135 us per request and answer (some 190 Python calls: a tenth of a lone swipe's CPU); llhttp takes
a few microseconds (bench/README.md, "Edge agent").

What an answer may be: a status line and headers, then a body framed by Content-Length, by
chunked encoding, or (no framing at all) by the end of the connection; 1xx interim answers are
skipped. Anything else (not HTTP, a body cut short, more than :data:`MAX_RESPONSE`) is an
:class:`HttpError`.

Errors are :class:`HttpError` (connection refused or lost, a malformed answer); the caller bounds
every call with its own deadline (``asyncio.timeout``). A connection is reused only after a
complete exchange that both sides want kept alive, with no stray bytes after the answer; one that
was interrupted (timeout, cancellation, error) is closed, so a late answer can never be read as
the answer to the next request. A reused connection that the server closed while idle fails the
request with :class:`HttpError`: the caller's retry (every call is idempotent) goes out on a fresh
connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

__all__ = ["ConnectError", "Http1Pool", "HttpError", "HttpReply"]

READ_CHUNK = 65536
MAX_RESPONSE = 4 << 20  # a cloud answer is a few KB; more is not an edge API answer
_FRAMING_HEADERS = (b"content-length", b"transfer-encoding")


class HttpError(Exception):
    """No HTTP answer: the connection failed, was lost, or the answer was not HTTP/1.1."""


class ConnectError(HttpError):
    """No connection could be made (refused, unreachable, timed out): the request never left."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes


class _Answer:
    """httptools' callbacks for one answer (a fresh parser per request: nothing carries over).

    Bytes after the answer in the same read (a second answer we never asked for) are noted in
    ``stray`` and change nothing here; the connection is then not reused."""

    __slots__ = ("parser", "status", "chunks", "size", "framed", "headers_done", "complete", "keep_alive",
                 "too_large", "stray")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.chunks: list[bytes] = []
        self.size = 0
        self.framed = False  # Content-Length or Transfer-Encoding: the body does not run to the close
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.too_large = False
        self.stray = False

    def on_message_begin(self) -> None:
        if self.complete:
            self.stray = True

    def on_header(self, name: bytes, _value: bytes) -> None:
        if not self.complete and name.lower() in _FRAMING_HEADERS:
            self.framed = True

    def on_headers_complete(self) -> None:
        if not self.complete:
            self.status = self.parser.get_status_code()
            self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.size += len(body)
        if self.size > MAX_RESPONSE:
            self.too_large = True
            raise HttpError("answer too large")  # httptools stops and raises HttpParserCallbackError
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self.status < 200:  # an interim 1xx answer: the final one follows on the same connection
            self.chunks, self.size, self.framed, self.headers_done = [], 0, False, False
            return
        self.keep_alive = self.parser.should_keep_alive()  # asked before the parser resets
        self.complete = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
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
        self._host_header = self._host if self._port == default_port else f"{self._host}:{self._port}"
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
            reply, reusable = await self._exchange(conn, path, headers, body)
        except BaseException:
            conn.close()  # interrupted mid-exchange: never reused
            raise
        if reusable:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()  # the server asked to close (Connection: close, HTTP/1.0) or sent stray bytes
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
                        body: bytes) -> tuple[HttpReply, bool]:
        """One request and its answer; returns the answer and whether the connection may be reused."""
        conn.writer.write(self._request(path, headers, body))
        answer = _Answer()
        try:
            while not answer.complete:
                data = await conn.reader.read(READ_CHUNK)
                if not data:  # the server closed the connection
                    if answer.headers_done and not answer.framed and answer.status >= 200:
                        break  # a body without framing ends with the connection
                    raise HttpError("connection closed before the answer")
                answer.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if answer.too_large:
                raise HttpError("answer too large") from None
            raise HttpError(f"not an HTTP/1.1 answer: {exc}") from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise HttpError(f"connection lost: {exc}") from None
        reply = HttpReply(answer.status, b"".join(answer.chunks))
        # Reused only when both sides keep it alive and nothing came after the answer (a second
        # answer we never asked for leaves the connection's state unknown).
        return reply, answer.complete and answer.keep_alive and not answer.stray

    def _request(self, path: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
        """The request's bytes. Header names and values are the agent's own (its id, a timestamp, a
        nonce, a signature, the content type); a line break in one would split the request, so it
        is refused rather than sent."""
        lines = [f"POST {self._prefix}{path} HTTP/1.1", f"host: {self._host_header}",
                 f"content-length: {len(body)}"]
        for name, value in headers:
            if not name or any(c in name + value for c in "\r\n\0") or ":" in name:
                raise ValueError(f"header {name!r} cannot be sent as it is")
            lines.append(f"{name}: {value}")
        if any(c in path for c in " \r\n\0"):
            raise ValueError(f"path {path!r} cannot be sent as it is")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
