"""Timeouts, 5xx and odd answers are UNKNOWN, never FAIL; refusals of the request itself are FAIL."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from chalicelib.channels.base import ChannelState, RefundRequest, ScanPayRequest, TradeStatus
from chalicelib.channels.wechat_v2 import build
from sandbox.wechat_v2 import sign, to_xml

from wechat_v2_support import DIRECT_APPID, DIRECT_MCH_ID, FAST_TIMEOUT_S

INSTANT = "124567890123451234"


@pytest.fixture
def fast_channel(make_channel):
    return make_channel(timeout_s=FAST_TIMEOUT_S)


def scan_pay_request(out_trade_no: str) -> ScanPayRequest:
    return ScanPayRequest(out_trade_no=out_trade_no, amount_fen=100, description="x", auth_code=INSTANT)


@pytest.mark.parametrize("mode", ["error", "timeout"])
def test_scan_pay_5xx_or_timeout_is_unknown_then_query_tells(fast_channel, fault, new_order_id, mode):
    fault("/pay/micropay", mode)
    request = scan_pay_request(new_order_id())

    result = fast_channel.scan_pay(request)

    assert (result.state, result.trade_status) == (ChannelState.UNKNOWN, TradeStatus.UNKNOWN)
    assert fast_channel.query(request.out_trade_no).trade_status is TradeStatus.NOT_FOUND  # never arrived


@pytest.mark.parametrize("mode", ["error", "timeout"])
def test_query_5xx_or_timeout_is_unknown(fast_channel, fault, new_order_id, mode):
    fault("/pay/orderquery", mode)

    result = fast_channel.query(new_order_id())

    assert result.state is ChannelState.UNKNOWN and result.trade_status is None


@pytest.mark.parametrize("endpoint, call", [
    ("/pay/unifiedorder", lambda c, order, no: c.create_native_qr(order)),
    ("/pay/closeorder", lambda c, order, no: c.close(no)),
    ("/secapi/pay/reverse", lambda c, order, no: c.cancel(no)),
    ("/secapi/pay/refund", lambda c, order, no: c.refund(RefundRequest(no, f"{no}-R", 100, 100, "x"))),
])
def test_every_capability_answers_unknown_on_5xx(fast_channel, fault, native_order, endpoint, call):
    order = native_order()
    fault(endpoint, "error")

    result = call(fast_channel, order, order.out_trade_no)

    assert (result.state, result.code) == (ChannelState.UNKNOWN, "HTTP_502")


def test_refund_timeout_is_unknown_and_the_retry_refunds_once(fast_channel, fault, new_order_id, sandbox):
    out_trade_no = new_order_id()
    assert fast_channel.scan_pay(scan_pay_request(out_trade_no)).ok
    request = RefundRequest(out_trade_no, f"{out_trade_no}-R", 100, 100, "x")
    fault("/secapi/pay/refund", "timeout")

    assert fast_channel.refund(request).state is ChannelState.UNKNOWN
    assert fast_channel.refund(request).ok  # same out_refund_no, chosen and persisted before the call


def test_nobody_listening_is_unknown(settings_for):
    channel = build(settings_for(), gateway="http://127.0.0.1:9", timeout_s=FAST_TIMEOUT_S)

    result = channel.scan_pay(scan_pay_request("T-refused"))

    assert (result.state, result.trade_status) == (ChannelState.UNKNOWN, TradeStatus.UNKNOWN)


def test_wrong_api_key_is_refused_by_the_platform(make_channel, native_order):
    result = make_channel(api_key="B" * 32).create_native_qr(native_order())

    assert (result.state, result.code, result.message) == (ChannelState.FAIL, "RETURN_FAIL", "签名错误")


def test_unknown_merchant_is_refused_by_the_platform(make_channel, settings_for, gateway, native_order):
    stranger = build({**settings_for(), "mch_id": "1999999999"}, gateway=gateway, timeout_s=5)

    result = stranger.create_native_qr(native_order())

    assert (result.state, result.code) == (ChannelState.FAIL, "RETURN_FAIL")


def test_appid_not_bound_to_the_merchant_is_refused(make_channel, native_order):
    result = make_channel(appid="wx0000000000000000").create_native_qr(native_order())

    assert (result.state, result.code) == (ChannelState.FAIL, "APPID_MCHID_NOT_MATCH")


# --- a rogue platform: answers that must not be believed -------------------------------------

class RoguePlatform:
    """Answers every request with one fixed body, as a broken proxy or an impostor might."""

    def __init__(self) -> None:
        self.status, self.body = 200, b""
        rogue = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(rogue.status)
                self.send_header("Content-Length", str(len(rogue.body)))
                self.end_headers()
                self.wfile.write(rogue.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"


@pytest.fixture
def rogue() -> Iterator[RoguePlatform]:
    platform = RoguePlatform()
    yield platform
    platform.server.shutdown()
    platform.server.server_close()


def paid_answer(key: str) -> bytes:
    fields = {"return_code": "SUCCESS", "result_code": "SUCCESS", "appid": DIRECT_APPID, "mch_id": DIRECT_MCH_ID,
              "nonce_str": "n0nce", "trade_type": "MICROPAY", "total_fee": "100", "transaction_id": "4200000001",
              "out_trade_no": "T-rogue", "time_end": "20260301120000"}
    return to_xml({**fields, "sign": sign(fields, key)})


@pytest.mark.parametrize("case", ["signed with another key", "unsigned", "not xml", "html 200", "xxe", "empty"])
def test_answers_that_cannot_be_trusted_are_unknown(rogue, settings_for, case):
    settings = settings_for()
    rogue.body = {
        "signed with another key": paid_answer("C" * 32),
        "unsigned": paid_answer(settings["api_key"]).replace(b"<sign>", b"<nosign>").replace(b"</sign>", b"</nosign>"),
        "not xml": b"hello",
        "html 200": b"<html><body>maintenance</body></html>",
        "xxe": b'<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><return_code>&x;</return_code></xml>',
        "empty": b"",
    }[case]
    channel = build(settings, gateway=rogue.gateway, timeout_s=2)

    result = channel.scan_pay(scan_pay_request("T-rogue"))

    assert result.state is ChannelState.UNKNOWN, result
    assert "root:" not in result.message


def test_genuine_answer_from_the_same_rogue_is_believed(rogue, settings_for):
    """The control case for the test above: the same answer, correctly signed, is a payment."""
    settings = settings_for()
    rogue.body = paid_answer(settings["api_key"])

    result = build(settings, gateway=rogue.gateway, timeout_s=2).scan_pay(scan_pay_request("T-rogue"))

    assert (result.state, result.trade_no, result.amount_fen) == (ChannelState.SUCCESS, "4200000001", 100)
