"""The Alipay channel against the in-process sandbox, over loopback HTTP.

One sandbox per test module (only the alipay platform loaded), one accounts section per session
(RSA key generation is the slow part), and a tiny HTTP receiver that plays our notify endpoint.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest

from chalicelib.channels.alipay import AlipayChannel, build
from sandbox.alipay import BANK_APP_ID, DEMO_APP_ID, DEMO_AUTH_TOKEN, channel_settings, make_accounts_section
from sandbox.server import Sandbox

GATEWAY_PATH = "/alipay/gateway.do"
CALL_TIMEOUT_S = 3.0
HANG_S = 1.0  # a "timeout" fault holds the answer this long; timeout tests use a shorter client timeout


@pytest.fixture(scope="session")
def alipay_section() -> dict:
    return make_accounts_section()


@pytest.fixture(scope="module")
def sandbox(alipay_section: dict) -> Iterator[Sandbox]:
    box = Sandbox({"alipay": alipay_section}, "http://127.0.0.1", schedule_scale=0.001,
                  platform_modules=("sandbox.alipay",), hang_s=HANG_S).start("127.0.0.1", 0)
    # Port 0 picks a free port; the alipay platform reads ctx.base_url only when it builds a bill URL.
    box.ctx.base_url = f"http://127.0.0.1:{box.port}"
    yield box
    box.stop()


@pytest.fixture
def gateway(sandbox: Sandbox) -> str:
    return sandbox.ctx.base_url


@pytest.fixture
def direct_settings(alipay_section: dict) -> dict:
    return channel_settings(alipay_section, DEMO_APP_ID)


@pytest.fixture
def isv_settings(alipay_section: dict) -> dict:
    return channel_settings(alipay_section, BANK_APP_ID, app_auth_token=DEMO_AUTH_TOKEN)


@pytest.fixture
def channel(direct_settings: dict, gateway: str) -> AlipayChannel:
    return build(direct_settings, gateway=gateway, timeout_s=CALL_TIMEOUT_S)


@pytest.fixture
def isv_channel(isv_settings: dict, gateway: str) -> AlipayChannel:
    return build(isv_settings, gateway=gateway, timeout_s=CALL_TIMEOUT_S)


@pytest.fixture
def order_no() -> Callable[[], str]:
    return lambda: "SP" + uuid.uuid4().hex[:20].upper()


# ---------------------------------------------------------------------------- sandbox controls


def _post_json(url: str, data: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def scan(gateway: str) -> Callable[..., tuple[int, dict]]:
    """A consumer scans `qr` with a wallet and pays: (HTTP status, the sandbox's JSON)."""
    return lambda qr, wallet="alipay": _post_json(f"{gateway}/sandbox/scan", {"qr": qr, "wallet": wallet})


@pytest.fixture
def control(gateway: str) -> Callable[[str, dict], tuple[int, dict]]:
    """POST a sandbox control endpoint (e.g. /sandbox/refunds): (HTTP status, the sandbox's JSON)."""
    return lambda path, body: _post_json(f"{gateway}{path}", body)


@pytest.fixture
def fault(gateway: str) -> Callable[[str], None]:
    """The next gateway call answers a 502 ("error") or hangs past the client's timeout ("timeout")."""

    def inject(mode: str) -> None:
        status, _ = _post_json(f"{gateway}/sandbox/faults", {"path": GATEWAY_PATH, "mode": mode, "count": 1})
        assert status == 200

    return inject


# ---------------------------------------------------------------------------- our notify endpoint


@dataclass
class Receiver:
    """Records each POST and answers from `answers` (then `success`), like our notify endpoint."""

    url: str = ""
    base_url: str = ""
    answers: list[bytes] = field(default_factory=list)
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} notification(s), got {len(self.posts)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                answer = state.answers.pop(0) if state.answers else b"success"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST  # also plays a gateway that answers 200 with something that is not JSON

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    state.url = f"{state.base_url}/notify/alipay"
    yield state
    server.shutdown()
    server.server_close()
