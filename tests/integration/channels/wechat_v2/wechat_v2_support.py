"""Constants and helpers shared by the wechat_v2 channel tests (a unique name, unlike conftest)."""
from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chalicelib.channels.base import HttpReply, NotificationRejected, PaymentNotice
from chalicelib.channels.wechat_v2 import WeChatV2Channel

DIRECT_APPID, DIRECT_MCH_ID = "wx2421b1c4370ec43b", "1900000109"
BANK_APPID, BANK_MCH_ID = "wx8888888888888888", "1900000200"
SUB_MCH_ID, SUB_APPID, UNREGISTERED_SUB_MCH_ID = "1900000201", "wx7777777777777777", "1900000299"
BILL_APPID, BILL_MCH_ID = "wx3333333333333333", "1900000300"
CERT_APPID, CERT_MCH_ID = "wx4444444444444444", "1900000400"
HANG_S = 1.5  # a "timeout" fault hangs this long; the channel under test gives up after FAST_TIMEOUT_S
FAST_TIMEOUT_S = 0.3


def free_port() -> int:
    """The sandbox needs its base URL before it starts, so pick the port first."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_json(url: str, data: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


# --- a tiny merchant endpoint that receives the sandbox's notifications -------------------

@dataclass
class Received:
    body: bytes
    notice: PaymentNotice | None
    rejected: str | None


@dataclass
class NotificationReceiver:
    """Answers each notification as our webhook will: parse_notification, then ack or nack."""

    channel: WeChatV2Channel
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/notify/wechat_v2"

    def start(self) -> "NotificationReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = receiver.handle(dict(self.headers.items()), body)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                payload = reply.body.encode("utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def handle(self, headers: dict, body: bytes) -> HttpReply:
        try:
            notice, rejected = self.channel.parse_notification(headers, body), None
        except NotificationRejected as error:
            notice, rejected = None, error.reason
        with self._arrived:
            self.received.append(Received(body, notice, rejected))
            self._arrived.notify_all()
        return self.channel.ack() if notice else self.channel.nack(rejected or "rejected")

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout_s)
            return list(self.received)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
