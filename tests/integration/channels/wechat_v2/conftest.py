"""The WeChat Pay v2 channel against the in-process sandbox, over real HTTP.

One sandbox for the session (only the wechat_v2 platform loaded, so that platforms still being built
cannot break these tests), with four accounts:
  - DIRECT: an ordinary merchant (scheme 1);
  - BANK: a service provider with one registered sub-merchant SUB_MCH_ID (scheme 2);
  - BILL: a merchant used only by the bill test, so that other tests' trades stay off its bill;
  - CERT: a merchant for the certificate test.
Each test uses its own out_trade_no, so tests do not see each other's trades.
"""
from __future__ import annotations

import time
import uuid
from typing import Callable, Iterator

import pytest

from chalicelib.channels.base import NativeOrderRequest
from chalicelib.channels.wechat_v2 import WeChatV2Channel, build
from sandbox import wechat_v2 as platform
from sandbox.server import Sandbox
from wechat_v2_support import (
    BANK_APPID, BANK_MCH_ID, BILL_APPID, BILL_MCH_ID, CERT_APPID, CERT_MCH_ID, DIRECT_APPID, DIRECT_MCH_ID, HANG_S,
    SUB_APPID, SUB_MCH_ID, NotificationReceiver, free_port, post_json,
)


@pytest.fixture(scope="session")
def accounts() -> dict:
    return {"wechat_v2": platform.make_accounts_section({
        DIRECT_MCH_ID: platform.make_merchant(DIRECT_APPID),
        BANK_MCH_ID: platform.make_merchant(BANK_APPID, sub_merchants={SUB_MCH_ID: [SUB_APPID]}),
        BILL_MCH_ID: platform.make_merchant(BILL_APPID, fee_rate_ppm=6000),
        CERT_MCH_ID: platform.make_merchant(CERT_APPID),
    })}


@pytest.fixture(scope="session")
def sandbox(accounts: dict) -> Iterator[Sandbox]:
    port = free_port()
    box = Sandbox(accounts, f"http://127.0.0.1:{port}", schedule_scale=0.01,
                  platform_modules=("sandbox.wechat_v2",), hang_s=HANG_S).start("127.0.0.1", port)
    yield box
    box.stop()


@pytest.fixture(scope="session")
def gateway(sandbox: Sandbox) -> str:
    """What the app passes to every channel (CHANNEL_GATEWAY): the sandbox root."""
    return sandbox.ctx.base_url


@pytest.fixture(scope="session")
def sdk_base_url(gateway: str) -> str:
    """Where wechatpy's API_BASE_URL points: WeChat Pay v2 below the sandbox root."""
    return f"{gateway}{platform.PREFIX}/"


@pytest.fixture(scope="session")
def settings_for(accounts: dict) -> Callable[..., dict]:
    """Channel settings for one of the sandbox's merchants, as the store would hand them over."""
    merchants = accounts["wechat_v2"]["merchants"]

    def settings(mch_id: str = DIRECT_MCH_ID, **overrides: str) -> dict:
        merchant = merchants[mch_id]
        base = {"appid": merchant["appids"][0], "mch_id": mch_id, "api_key": merchant["api_key"]}
        return {**base, **overrides}

    return settings


@pytest.fixture(scope="session")
def make_channel(gateway: str, settings_for: Callable[..., dict]) -> Callable[..., WeChatV2Channel]:
    def make(mch_id: str = DIRECT_MCH_ID, timeout_s: float = 5.0, **overrides: str) -> WeChatV2Channel:
        return build(settings_for(mch_id, **overrides), gateway=gateway, timeout_s=timeout_s)

    return make


@pytest.fixture
def channel(make_channel: Callable[..., WeChatV2Channel]) -> WeChatV2Channel:
    return make_channel()


@pytest.fixture
def bank_channel(make_channel: Callable[..., WeChatV2Channel]) -> WeChatV2Channel:
    return make_channel(BANK_MCH_ID, sub_mch_id=SUB_MCH_ID, sub_appid=SUB_APPID)


@pytest.fixture
def new_order_id() -> Callable[[], str]:
    return lambda: f"T{uuid.uuid4().hex[:24]}"


@pytest.fixture
def scan(sandbox: Sandbox) -> Callable[[str], dict]:
    """A consumer scans the QR with WeChat and pays."""
    def scan_and_pay(qr: str, wallet: str = "wechat") -> dict:
        status, answer = post_json(f"{sandbox.ctx.base_url}/sandbox/scan", {"qr": qr, "wallet": wallet})
        assert status == 200, answer
        return answer

    return scan_and_pay


@pytest.fixture
def fault(sandbox: Sandbox) -> Callable[..., None]:
    def inject(endpoint: str, mode: str = "error", count: int = 1) -> None:
        status, _ = post_json(f"{sandbox.ctx.base_url}/sandbox/faults",
                              {"path": f"{platform.PREFIX}{endpoint}", "mode": mode, "count": count})
        assert status == 200

    return inject


@pytest.fixture
def native_order(new_order_id: Callable[[], str]) -> Callable[..., NativeOrderRequest]:
    def order(notify_url: str = "http://127.0.0.1:9/unused", amount_fen: int = 1250,
              expires_in_s: float = 600) -> NativeOrderRequest:
        return NativeOrderRequest(out_trade_no=new_order_id(), amount_fen=amount_fen, description="午餐 套餐A",
                                  notify_url=notify_url, expires_at=time.time() + expires_in_s)

    return order


@pytest.fixture
def receiver_for() -> Iterator[Callable[[WeChatV2Channel], NotificationReceiver]]:
    started: list[NotificationReceiver] = []

    def start(channel: WeChatV2Channel) -> NotificationReceiver:
        receiver = NotificationReceiver(channel).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
