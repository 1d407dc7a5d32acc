"""The processes the operation bench talks to, and the endpoint that catches the sandbox's notifications.

The DynamoDB emulator and the sandbox run as child processes, not as threads of the bench: their
CPU time must not be counted as ours (DESIGN.md: the emulator's time is its own). Every wait here
has a deadline, and every child is terminated by its own handle when the bench ends.
"""
from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class ChildServer:
    """`python -m <module> --port P ...` on 127.0.0.1, its output in a log file under `log_dir`."""

    def __init__(self, name: str, module: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_dir / f"{name}.log"
        self._log = open(self._log_path, "wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(self.port), *args],
            cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start:\n{self._log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._log.close()


def start_emulator(log_dir: Path) -> ChildServer:
    return ChildServer("dynamodb", "devstack.dynamodb", [], log_dir)


def start_sandbox(accounts: dict, log_dir: Path) -> ChildServer:
    path = log_dir / "sandbox-accounts.json"
    path.write_text(json.dumps(accounts), encoding="utf-8")
    return ChildServer("sandbox", "sandbox", ["--accounts", str(path)], log_dir)


# --- the merchant's notify endpoint, reduced to catching what the sandbox posts ----------------

# What stops each platform's retries (sandbox/<platform>.py is_ack): the bench applies the
# notifications itself afterwards, through NotificationService.handle, with the clock running.
ACKS = {
    "wechat_v2": (200, b"<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>"),
    "wechat_v3": (204, b""),
    "alipay": (200, b"success"),
}


@dataclass(frozen=True)
class CaughtNotification:
    kind: str
    merchant_id: str
    headers: dict[str, str]  # lower-cased names, as Chalice hands them to the notify route
    body: bytes


class NotificationInbox:
    """Receives POST /notify/{kind}/{merchant_id} on a thread of its own (not the measuring thread)."""

    def __init__(self) -> None:
        self.caught: queue.Queue[CaughtNotification] = queue.Queue()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.strip("/").split("/")
                kind = parts[1] if len(parts) == 3 and parts[0] == "notify" else ""
                status, answer = ACKS.get(kind, (404, b"unknown"))
                if kind:
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    inbox.caught.put(CaughtNotification(kind, parts[2], headers, body))
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-inbox", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def take(self, count: int, timeout_s: float) -> list[CaughtNotification]:
        deadline = time.monotonic() + timeout_s
        caught = []
        while len(caught) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(caught)} of {count} notifications arrived in {timeout_s:.0f} s")
            try:
                caught.append(self.caught.get(timeout=remaining))
            except queue.Empty:
                continue
        return caught

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
