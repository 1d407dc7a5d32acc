"""A tiny HTTP layer for the sandbox: a router over the standard library's threading server.

The standard library is enough here: the sandbox serves a handful of endpoints on loopback, and
keeping Flask out of it keeps the stand-in honest about raw bodies and headers.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("sandbox")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    raw_query: str = ""  # exactly as sent: WeChat v3 signs the URL with its query string

    def json(self) -> dict:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, str]:
        """GET query and urlencoded POST body merged, as Alipay's gateway accepts both."""
        merged = {k: v[-1] for k, v in self.query.items()}
        if self.body and "json" not in self.headers.get("content-type", ""):
            merged.update({k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()})
        return merged


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: object, status: int = 200, headers: dict[str, str] | None = None) -> "Response":
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> "Response":
        return cls(status, text.encode("utf-8"), {"Content-Type": content_type})


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._prefix: list[tuple[str, str, Handler]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        """`path` ending in '/*' matches every path below it (v3 paths carry ids)."""
        if path.endswith("/*"):
            self._prefix.append((method, path[:-1], handler))
        else:
            self._exact[(method, path)] = handler

    def dispatch(self, request: Request) -> Response:
        handler = self._exact.get((request.method, request.path))
        if handler is None:
            for method, prefix, candidate in self._prefix:
                if method == request.method and request.path.startswith(prefix):
                    handler = candidate
                    break
        if handler is None:
            return Response.json({"code": "NOT_FOUND", "message": request.path}, 404)
        try:
            return handler(request)
        except Exception:  # a sandbox bug must show up as a 500, never kill the server thread
            log.exception("sandbox handler failed: %s %s", request.method, request.path)
            return Response.json({"code": "SYSTEM_ERROR", "message": "sandbox error"}, 500)


def serve(router: Router, host: str, port: int) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; returns the server (server_address has the real port)."""

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw_query=parts.query,
            )
            response = router.dispatch(request)
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout fault did its job)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, fmt: str, *args: object) -> None:
            log.debug("sandbox %s", fmt % args)

    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True).start()
    return server
