"""A real in-process sandbox (WeChat Pay v3 only) and real channels pointed at it, in both verification modes."""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest

from chalicelib.channels import wechat_v3 as channel_module
from chalicelib.channels.base import NotificationRejected, PaymentNotice
from sandbox import wechat_v3 as platform
from sandbox.server import Sandbox

from wechat_v3_support import MCHID_BILLS, MCHID_CERT, MCHID_PUBKEY, MODES, post_json, start_sandbox

@pytest.fixture(scope="session")
def section() -> dict:
    return platform.make_accounts_section([
        (MCHID_CERT, "wx00000000000c3e71", "certificate"),
        (MCHID_PUBKEY, "wx0000000000b0b1c2", "public_key"),
        (MCHID_BILLS, "wx00000000000b1115", "certificate"),
    ])


@pytest.fixture(scope="session")
def sandbox(section: dict) -> Iterator[Sandbox]:
    box = start_sandbox(section)
    yield box
    box.stop()


@pytest.fixture(scope="session")
def base_url(sandbox: Sandbox) -> str:
    return sandbox.ctx.base_url


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def mchid(mode: str) -> str:
    return MODES[mode]


@pytest.fixture
def make_channel(section: dict, base_url: str) -> Callable[..., channel_module.WeChatPayV3Channel]:
    def make(mchid: str, timeout_s: float = 5.0, **overrides: str) -> channel_module.WeChatPayV3Channel:
        settings = {**platform.channel_settings(section, mchid), **overrides}
        return channel_module.build(settings, gateway=base_url, timeout_s=timeout_s)
    return make


@pytest.fixture
def channel(make_channel, mchid: str) -> channel_module.WeChatPayV3Channel:
    return make_channel(mchid)


@pytest.fixture
def calls(sandbox: Sandbox) -> Callable[[str], list[str]]:
    """The v3 calls the sandbox authenticated for one merchant, in order."""
    v3 = sandbox.ctx.platforms[platform.NAME]
    return lambda mchid: [call for who, call in list(v3.calls) if who == mchid]


@pytest.fixture
def order_no() -> Callable[[str], str]:
    return lambda prefix="T": f"{prefix}{uuid.uuid4().hex[:20].upper()}"


@pytest.fixture
def fault(base_url: str) -> Callable[[str, str], None]:
    def add(path: str, mode: str = "error", count: int = 1) -> None:
        status, _ = post_json(f"{base_url}/sandbox/faults", {"path": path, "mode": mode, "count": count})
        assert status == 200
    return add


@pytest.fixture
def scan(base_url: str) -> Callable[[str], tuple[int, dict]]:
    return lambda qr, wallet="wechat": post_json(f"{base_url}/sandbox/scan", {"qr": qr, "wallet": wallet})


@dataclass
class Receiver:
    """The merchant's notify URL: parses each post with the real channel, answers ack() or nack()."""

    url: str = ""
    notices: list[PaymentNotice] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    nack_first: int = 0  # answer nack() to this many posts before acknowledging
    channel: channel_module.WeChatPayV3Channel | None = None
    received: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver(channel: channel_module.WeChatPayV3Channel) -> Iterator[Receiver]:
    state = Receiver(channel=channel)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            assert state.channel is not None
            try:
                notice = state.channel.parse_notification(dict(self.headers.items()), body)
            except NotificationRejected as rejected:
                state.rejections.append(rejected.reason)
                reply = state.channel.nack(rejected.reason)
            else:
                if state.nack_first > 0:
                    state.nack_first -= 1
                    reply = state.channel.nack("try again later")
                else:
                    state.notices.append(notice)
                    reply = state.channel.ack()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body.encode())))
            self.end_headers()
            self.wfile.write(reply.body.encode())
            state.received.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/notify/wechat_v3"
    yield state
    server.shutdown()
    server.server_close()
