"""Golden notifications (tests/fixtures/wechat_v3, fixed TEST-ONLY keys) through parse_notification,
in both verification modes. Certificate mode downloads the fixture certificate from a sandbox started
with the fixture keys; public-key mode points at a port where nothing listens, proving it makes no call."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Callable, Iterator

import pytest

from chalicelib.channels import wechat_v3 as channel_module
from chalicelib.channels.base import NotificationRejected, PaymentNotice
from sandbox import wechat_v3 as platform
from sandbox.server import Sandbox

from wechat_v3_support import free_port, start_sandbox

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "wechat_v3"


def _generator():
    spec = importlib.util.spec_from_file_location("wechat_v3_make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()
KEYS = GEN.load_keys()
SECTION = KEYS["section"]
NOW = GEN.FIXTURE_NOW + 30  # the channel's clock: half a minute after the platform signed


@pytest.fixture(scope="module")
def fixture_sandbox() -> Iterator[Sandbox]:
    box = start_sandbox(SECTION)
    yield box
    box.stop()


@pytest.fixture(params=["certificate", "public_key"])
def fixture_mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def parse(fixture_mode: str, fixture_sandbox: Sandbox) -> Callable[[str], PaymentNotice]:
    gateway = fixture_sandbox.ctx.base_url if fixture_mode == "certificate" else f"http://127.0.0.1:{free_port()}"
    settings = platform.channel_settings(SECTION, GEN.MCHID, verify_mode=fixture_mode)
    channel = channel_module.build(settings, gateway=gateway, timeout_s=2, clock=lambda: NOW)

    def run(name: str) -> PaymentNotice:
        record = json.loads((FIXTURES / fixture_mode / f"{name}.json").read_text(encoding="utf-8"))
        return channel.parse_notification(record["headers"], record["body"].encode("utf-8"))
    return run


def test_genuine_notification_gives_the_payment(parse):
    assert parse("genuine") == PaymentNotice(
        out_trade_no="ORDER20260101A", trade_no="4200002026010112345678901234", amount_fen=1250,
        paid_at=1767239998.0, merchant_ref="1900000109", paid=True,
    )


def test_unknown_order_is_fine_for_the_channel(parse):
    notice = parse("unknown_order")
    assert (notice.out_trade_no, notice.amount_fen, notice.paid) == ("NO-SUCH-ORDER-0001", 1250, True)


@pytest.mark.parametrize(("name", "reason"), [
    ("forged_signature", "bad signature"),
    ("tampered_ciphertext", "bad signature"),
    ("tampered_amount", "bad signature"),
    ("stale_timestamp", "stale timestamp"),
    ("wrong_mchid", "mchid '1900009999'"),
    ("wrong_appid", "appid 'wx0000000000000000'"),
    ("wrong_apiv3_key", "cannot decrypt"),
    ("refund_event", "unexpected event_type 'REFUND.SUCCESS'"),
])
def test_bad_notifications_are_rejected_with_a_reason(parse, name, reason):
    with pytest.raises(NotificationRejected) as rejected:
        parse(name)
    assert reason in rejected.value.reason


def test_unknown_serial_is_rejected(parse, fixture_mode):
    with pytest.raises(NotificationRejected) as rejected:
        parse("unknown_serial")
    expected = "unknown Wechatpay-Serial" if fixture_mode == "public_key" else "bad signature"
    assert expected in rejected.value.reason


def test_header_names_are_case_insensitive(fixture_mode, fixture_sandbox):
    record = json.loads((FIXTURES / fixture_mode / "genuine.json").read_text(encoding="utf-8"))
    settings = platform.channel_settings(SECTION, GEN.MCHID, verify_mode=fixture_mode)
    channel = channel_module.build(settings, gateway=fixture_sandbox.ctx.base_url, clock=lambda: NOW)
    upper = {name.upper(): value for name, value in record["headers"].items()}
    assert channel.parse_notification(upper, record["body"].encode()).amount_fen == 1250


@pytest.mark.parametrize("drop", ["Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Timestamp"])
def test_missing_headers_are_rejected(fixture_mode, fixture_sandbox, drop):
    record = json.loads((FIXTURES / fixture_mode / "genuine.json").read_text(encoding="utf-8"))
    settings = platform.channel_settings(SECTION, GEN.MCHID, verify_mode=fixture_mode)
    channel = channel_module.build(settings, gateway=fixture_sandbox.ctx.base_url, clock=lambda: NOW)
    headers = {k: v for k, v in record["headers"].items() if k != drop}
    with pytest.raises(NotificationRejected):
        channel.parse_notification(headers, record["body"].encode())


def test_the_clock_window_is_300_seconds_either_way(fixture_sandbox):
    record = json.loads((FIXTURES / "public_key" / "genuine.json").read_text(encoding="utf-8"))
    settings = platform.channel_settings(SECTION, GEN.MCHID, verify_mode="public_key")
    for offset, accepted in ((300, True), (-300, True), (301, False), (-301, False)):
        channel = channel_module.build(settings, clock=lambda offset=offset: GEN.FIXTURE_NOW + offset)
        try:
            channel.parse_notification(record["headers"], record["body"].encode())
            outcome = True
        except NotificationRejected as rejected:
            assert "stale timestamp" in rejected.reason
            outcome = False
        assert outcome is accepted, offset


def test_fixture_files_are_what_the_generator_writes():
    for relative, text in GEN.render(KEYS).items():
        assert (FIXTURES / relative).read_text(encoding="utf-8") == text, relative
