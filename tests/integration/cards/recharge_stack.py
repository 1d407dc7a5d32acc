"""Shared by the online-recharge tests against the sandbox: a loopback receiver that plays our public
notify endpoint, and a production Container (real channels from sealed settings) pointed at the
sandbox and that receiver. A test module imports the fixtures and defines its own `sandbox`."""
from __future__ import annotations

import dataclasses
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from chalice.test import Client

from app import app
from chalicelib.config import Settings
from chalicelib.container import Container, install
from chalicelib.domain.clock import FixedClock
from chalicelib.channels import alipay as alipay_channel
from chalicelib.services.card_container import card_services, install_card_services
from chalicelib.store.registry import ChannelAccount
from sandbox.alipay import DEMO_APP_ID, channel_settings
from sandbox.server import Sandbox
from tests.support.card_world import card_snapshot, issue_card
from tests.support.world import seed_world
from tests.support.ledger_invariants import check_card_ledger


class Receiver(ThreadingHTTPServer):
    """Keeps each body the sandbox posts and answers `success` (what Alipay wants; WeChat ignores it)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []
        self.got = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        self.server.got.set()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"success")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def stack(settings: Settings, sandbox: Sandbox, receiver: Receiver) -> Iterator[Container]:
    # The sandbox checks expiry times against its own (real) clock, so the services' clock starts now.
    own = dataclasses.replace(settings, channel_gateway=sandbox.ctx.base_url,
                              public_base_url=f"http://127.0.0.1:{receiver.server_address[1]}")
    clock = FixedClock(time.time())
    built = Container(own, clock, sleep=clock.advance)
    install(built)
    install_card_services(card_services(built))
    yield built
    install(None)  # type: ignore[arg-type]


@pytest.fixture
def http(stack: Container) -> Iterator[object]:
    with Client(app) as client:
        yield client.http


def pay_in_sandbox(sandbox: Sandbox, receiver: Receiver, path: str, payload: dict) -> bytes:
    """The holder pays through a sandbox control (e.g. /sandbox/scan); returns the notification the
    sandbox then posted to our notify URL."""
    request = urllib.request.Request(f"{sandbox.ctx.base_url}{path}", method="POST",
                                     data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    assert receiver.got.wait(10), "the sandbox posted no notification"
    return receiver.bodies[0]


def assert_credited_once(merchant_id: str, card_no: str, recharge_id: str, before_fen: int, recharge_fen: int) -> None:
    """The card's ledger invariants hold and the recharge is exactly one entry of its amount.
    `before_fen` was recharged at the counter before (the only other RECHARGE of the merchant)."""
    totals = check_card_ledger(merchant_id)
    assert totals.balances_fen == before_fen + recharge_fen
    assert totals.by_kind["RECHARGE"] == before_fen + recharge_fen
    snapshot = card_snapshot(merchant_id, [card_no])
    assert snapshot["cards"][card_no]["cash_fen"] == before_fen + recharge_fen
    entries = [e for ledger in snapshot["ledgers"].values() for e in ledger
               if str(e["entry_id"]).endswith(f"recharge#{recharge_id}")]
    assert len(entries) == 1 and int(entries[0]["amount_fen"]) == recharge_fen


# --- set-ups the recharge modules share (each module keeps its own card number and sandbox) ----------

def started_sandbox(accounts: dict, platform_module: str) -> Sandbox:
    """A sandbox of one platform on a free loopback port, its notifications fast (scaled schedule)."""
    box = Sandbox(accounts, "http://127.0.0.1", schedule_scale=0.001, platform_modules=(platform_module,),
                  hang_s=1.0).start("127.0.0.1", 0)
    box.ctx.base_url = f"http://127.0.0.1:{box.port}"
    return box


def alipay_merchant(stack: Container, section: dict, card_no: str, start_fen: int) -> str:
    """A merchant paid through the sandbox's Alipay, with one card holding start_fen."""
    settings = channel_settings(section, DEMO_APP_ID)
    secrets = {k: v for k, v in settings.items() if k in alipay_channel.SECRET_SETTINGS}
    public = {k: v for k, v in settings.items() if k not in alipay_channel.SECRET_SETTINGS}
    world = seed_world(stack, accounts=[ChannelAccount("alipay", "alipay", public, secrets)], terminal_count=1)
    issue_card(card_services(stack), world.merchant_id, card_no, cash_fen=start_fen)
    return world.merchant_id


def wechat_merchant(stack: Container, merchant_account: dict, appid: str, mch_id: str, card_no: str,
                    start_fen: int, openid: str) -> str:
    """A merchant paid through the sandbox's WeChat v2, with one card holding start_fen whose holder is
    bound to openid (the OAuth binding itself is tested in functional/cards)."""
    account = ChannelAccount("wechat", "wechat_v2", {"appid": appid, "mch_id": mch_id},
                             {"api_key": merchant_account["api_key"]})
    world = seed_world(stack, accounts=[account], terminal_count=1)
    services = card_services(stack)
    holder_id = issue_card(services, world.merchant_id, card_no, cash_fen=start_fen)
    services.holders.bind_openid(holder_id, openid)
    return world.merchant_id
