"""Assembles the sandbox platform: router, trade book, notifier, the platforms, control endpoints.

    python -m sandbox --port 8002 --accounts .local/sandbox-accounts.json

Control endpoints (not part of any platform's API):
    POST /sandbox/scan     {"qr", "wallet"}: a consumer scans and pays (scan.py)
    GET  /sandbox/trades   every trade the sandbox holds, for people and tests
    POST /sandbox/faults   {"path", "mode": "error"|"timeout", "count"}: the next `count` calls to
                           `path` answer a system error or hang past the client's timeout
    POST /sandbox/refunds  {"outcome": "processing"|"fail"|"instant", "count", "wallet": "wechat"|"alipay"}:
                           what the next `count` new refunds of the wallet (default wechat) do (stay
                           PROCESSING, fail, complete)
    POST /sandbox/refunds/finish  {"out_refund_no", "status": "SUCCESS"|"FAILED"}: a processing refund ends
"""
from __future__ import annotations

import importlib
import json
import threading
import time
from dataclasses import asdict
from http.server import ThreadingHTTPServer
from typing import Iterable

from sandbox.http import Request, Response, Router, serve
from sandbox.notifier import Notifier
from sandbox.platform import SandboxContext
from sandbox.scan import make_scan_handler
from sandbox.trades import TradeBook

PLATFORM_MODULES = ("sandbox.wechat_v2", "sandbox.wechat_v3", "sandbox.alipay", "sandbox.wechat_mp", "sandbox.bank")


class FaultInjector:
    """Makes chosen endpoints fail, to drive the UNKNOWN paths of the channels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[str]] = {}

    def add(self, path: str, mode: str, count: int) -> None:
        with self._lock:
            self._faults.setdefault(path, []).extend([mode] * count)

    def take(self, path: str) -> str | None:
        with self._lock:
            queue = self._faults.get(path)
            return queue.pop(0) if queue else None


class FaultyRouter(Router):
    def __init__(self, faults: FaultInjector, hang_s: float = 12.0) -> None:
        super().__init__()
        self.faults = faults
        self._hang_s = hang_s

    def dispatch(self, request: Request) -> Response:
        mode = self.faults.take(request.path)
        if mode == "timeout":
            time.sleep(self._hang_s)
            return Response.text("late", 504)
        if mode == "error":
            return Response.text("<html>502 Bad Gateway</html>", 502, "text/html")
        return super().dispatch(request)


class Sandbox:
    def __init__(self, accounts: dict, base_url: str = "", schedule_scale: float = 1.0,
                 platform_modules: Iterable[str] = PLATFORM_MODULES, hang_s: float = 12.0) -> None:
        self.faults = FaultInjector()
        self.router = FaultyRouter(self.faults, hang_s)
        self.ctx = SandboxContext(
            book=TradeBook(), notifier=Notifier(schedule_scale=schedule_scale),
            accounts=accounts, base_url=base_url.rstrip("/"),
        )
        for module_name in platform_modules:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as error:
                if error.name != module_name:
                    raise
                continue  # that platform is not built yet
            platform = module.build(self.ctx)
            self.ctx.platforms[platform.name] = platform
            platform.register(self.router)
        self.router.add("POST", "/sandbox/scan", make_scan_handler(self.ctx))
        self.router.add("GET", "/sandbox/trades", self._trades)
        self.router.add("POST", "/sandbox/faults", self._add_fault)
        self.router.add("POST", "/sandbox/refunds", self._plan_refunds)
        self.router.add("POST", "/sandbox/refunds/finish", self._finish_refund)
        self.server: ThreadingHTTPServer | None = None

    def _trades(self, request: Request) -> Response:
        return Response.json([asdict(t) for t in self.ctx.book.all()])

    def _add_fault(self, request: Request) -> Response:
        data = request.json()
        self.faults.add(str(data["path"]), str(data.get("mode", "error")), int(data.get("count", 1)))
        return Response.json({"ok": True})

    def _plan_refunds(self, request: Request) -> Response:
        data = request.json()
        try:
            self.ctx.book.plan_refunds(str(data.get("outcome")), int(data.get("count", 1)),
                                       str(data.get("wallet", "wechat")))
        except ValueError as error:
            return Response.json({"ok": False, "message": str(error)}, 400)
        return Response.json({"ok": True})

    def _finish_refund(self, request: Request) -> Response:
        data = request.json()
        try:
            refund = self.ctx.book.finish_refund(str(data.get("out_refund_no")), str(data.get("status")), self.ctx.clock())
        except ValueError as error:
            return Response.json({"ok": False, "message": str(error)}, 400)
        if refund is None:
            return Response.json({"ok": False, "message": "no such refund processing"}, 404)
        return Response.json({"ok": True, "status": refund.status})

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "Sandbox":
        """Serve in the background. Started on port 0 with no base URL given, the base URL becomes
        the port actually bound."""
        self.server = serve(self.router, host, port)
        if not self.ctx.base_url:
            self.ctx.base_url = f"http://{host}:{self.port}"
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def stop(self) -> None:
        self.ctx.notifier.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    import argparse
    import logging

    parser = argparse.ArgumentParser(description="ScanPay sandbox payment platform")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--accounts", required=True, help="JSON file written by devstack (keys, merchants)")
    parser.add_argument("--schedule-scale", type=float, default=0.1, help="notification retry delays x this")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(message)s")
    with open(args.accounts, encoding="utf-8") as handle:
        accounts = json.load(handle)
    sandbox = Sandbox(accounts, f"http://{args.host}:{args.port}", args.schedule_scale).start(args.host, args.port)
    logging.info("sandbox platform on http://%s:%d (%s)", args.host, sandbox.port, ", ".join(sandbox.ctx.platforms))
    threading.Event().wait()
