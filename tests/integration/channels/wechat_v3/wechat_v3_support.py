"""Shared by the wechat_v3 tests: merchant ids, a sandbox starter, a tiny JSON poster."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from sandbox import wechat_v3 as platform
from sandbox.server import Sandbox

MCHID_CERT = "1900000109"  # verify_mode certificate
MCHID_PUBKEY = "1900000209"  # verify_mode public_key
MCHID_BILLS = "1900000309"  # only the bill test trades with it, so its bill is exact
MODES = {"certificate": MCHID_CERT, "public_key": MCHID_PUBKEY}


def free_port() -> int:
    """Sandbox needs its base URL before it starts; take a free port from the OS (tiny race, loopback only)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sandbox(section: dict, hang_s: float = 1.0) -> Sandbox:
    port = free_port()
    return Sandbox({platform.NAME: section}, f"http://127.0.0.1:{port}", schedule_scale=0.01,
                   platform_modules=("sandbox.wechat_v3",), hang_s=hang_s).start("127.0.0.1", port)


def post_json(url: str, data: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
