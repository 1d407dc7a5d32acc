"""WeChat Pay v3 golden notifications (tests/fixtures/wechat_v3) through the real webhook and channel,
in both verification modes (platform certificate, WeChat Pay public key).

The fixtures are signed at FIXTURE_NOW; the channel checks Wechatpay-Timestamp against the services'
clock (DirectoryChannels passes the Container's clock to wechat_v3.build), so this module's services run
30 s after it. Certificate mode downloads the fixture certificate from a sandbox started with the
fixture keys (the module's channel gateway); public-key mode makes no call.

Answers: 204 with an empty body, or 500 with WeChat's JSON {"code": "FAIL", "message": <reason>}.
"""
from __future__ import annotations

import json
from typing import Iterator

import pytest

import notify_support as support
from chalicelib.domain.clock import FixedClock
from notify_support import V3, V3_SECTION, assert_open, assert_paid_once, assert_refused_without_change
from sandbox import wechat_v3 as platform
from sandbox.server import Sandbox

NOW = V3.FIXTURE_NOW + 30
ACK = (204, b"", "")  # no body, so no content type


def fail(reason: str) -> support.Answer:
    body = json.dumps({"code": "FAIL", "message": reason}, ensure_ascii=False).encode()
    return 500, body, "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def service_clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture(scope="module")
def v3_sandbox() -> Iterator[Sandbox]:
    box = Sandbox({platform.NAME: V3_SECTION}, schedule_scale=0.01,
                  platform_modules=("sandbox.wechat_v3",)).start("127.0.0.1", 0)
    yield box
    box.stop()


@pytest.fixture(scope="module")
def channel_gateway(v3_sandbox: Sandbox) -> str:
    return v3_sandbox.ctx.base_url


@pytest.fixture(params=["certificate", "public_key"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def merchant(container, mode):  # type: ignore[no-untyped-def]
    """A direct merchant with the fixtures' mchid, appid and keys (sealed), and the fixtures' order."""
    world = support.seed_merchant(container, [support.wechat_v3_account(mode)])
    support.open_order(container, world, V3.ORDER, V3.AMOUNT_FEN, "wechat")
    return world


def deliver(http, world, mode: str, name: str):  # type: ignore[no-untyped-def]
    record = json.loads((support.FIXTURES / "wechat_v3" / mode / f"{name}.json").read_text(encoding="utf-8"))
    assert record["headers"]["Content-Type"] == "application/json"
    response = support.post(http, "wechat_v3", world.merchant_id, record["body"].encode("utf-8"), record["headers"])
    return support.answer_of(response)


def test_genuine_notification_pays_the_order_once(http, merchant, mode):
    assert deliver(http, merchant, mode, "genuine") == ACK
    assert_paid_once(V3.ORDER, "wechat", "wechat_v3", V3.TRANSACTION_ID, V3.AMOUNT_FEN)


BAD = [
    ("forged_signature", "bad signature"),
    ("tampered_ciphertext", "bad signature"),
    ("tampered_amount", "bad signature"),
    ("stale_timestamp", f"stale timestamp: {V3.FIXTURE_NOW - 3600} is more than 300s off"),
    ("wrong_mchid", "mchid '1900009999' is not this merchant's"),
    ("wrong_appid", "appid 'wx0000000000000000' is not this merchant's"),
    ("wrong_apiv3_key", "cannot decrypt resource with the APIv3 key"),
    ("refund_event", "unexpected event_type 'REFUND.SUCCESS'"),
    ("unknown_order", "unknown order"),
]
UNKNOWN_SERIAL = {
    "public_key": "unknown Wechatpay-Serial 'PUB_KEY_ID_0119999999999999999999999999999999'",
    "certificate": "bad signature",  # after one certificate download finds no such serial
}


def bad_cases(mode: str) -> list[tuple[str, str]]:
    return BAD + [("unknown_serial", UNKNOWN_SERIAL[mode])]


@pytest.mark.parametrize("name", [name for name, _ in BAD] + ["unknown_serial"])
def test_bad_notification_is_refused_and_changes_nothing(http, merchant, mode, name):
    reason = dict(bad_cases(mode))[name]
    assert_refused_without_change(lambda: deliver(http, merchant, mode, name), fail(reason))
    assert_open(V3.ORDER)


def test_the_timestamp_window_follows_the_services_clock(http, merchant, mode, service_clock):
    """The same genuine delivery, 301 s later by the services' clock, is refused as stale."""
    service_clock.advance(301)
    try:
        assert_refused_without_change(lambda: deliver(http, merchant, mode, "genuine"),
                                      fail(f"stale timestamp: {V3.FIXTURE_NOW} is more than 300s off"))
    finally:
        service_clock.advance(-301)
    assert deliver(http, merchant, mode, "genuine") == ACK


def test_twenty_genuine_deliveries_shuffled_with_bad_ones_book_once(http, merchant, mode):
    deliveries = [("genuine", ACK)] * 20 + [(name, fail(reason)) for name, reason in bad_cases(mode)]
    support.assert_shuffled_answers(deliveries, lambda name: deliver(http, merchant, mode, name), seed=20260101)
    assert_paid_once(V3.ORDER, "wechat", "wechat_v3", V3.TRANSACTION_ID, V3.AMOUNT_FEN)
