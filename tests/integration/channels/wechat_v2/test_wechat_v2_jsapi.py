"""JSAPI orders (the payer inside WeChat): prepay for an openid, the page's signed parameters, a bad
openid refused, the holder's confirmation through /sandbox/jsapi/pay and the verified notification."""
from __future__ import annotations

import time

from chalicelib.channels.base import ChannelState, TradeStatus
from chalicelib.channels.wechat_v2 import WeChatV2Settings, jsapi_params
from sandbox.wechat_v2 import from_xml, openid, sign

from wechat_v2_support import DIRECT_APPID, DIRECT_MCH_ID, SUB_APPID, post_json

HOLDER = openid(DIRECT_APPID, "holder-1")  # what the Official Account's OAuth gives for this app id


def _jsapi(channel, order_id: str, notify_url: str = "http://127.0.0.1:9/unused", payer: str = HOLDER,
           amount_fen: int = 3000):  # type: ignore[no-untyped-def]
    return channel.create_jsapi(order_id, amount_fen, "饭卡充值", notify_url, payer, expires_at=time.time() + 600)


def _confirm(sandbox, prepay_id: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    return post_json(f"{sandbox.ctx.base_url}/sandbox/jsapi/pay", {"prepay_id": prepay_id})


def test_jsapi_prepay_confirmed_in_wechat_and_notified(channel, new_order_id, receiver_for, sandbox, accounts):
    receiver = receiver_for(channel)
    order_id = new_order_id()

    created = _jsapi(channel, order_id, receiver.url)
    assert (created.state, created.qr) == (ChannelState.SUCCESS, None)
    assert created.prepay_id.startswith("wx")
    assert _jsapi(channel, order_id, receiver.url).prepay_id == created.prepay_id  # a retry: the same prepay
    assert channel.query(order_id).trade_status is TradeStatus.NOT_PAID

    status, paid = _confirm(sandbox, created.prepay_id)
    assert status == 200 and paid["out_trade_no"] == order_id and paid["amount_fen"] == 3000
    [received] = receiver.wait_for(1)
    assert received.rejected is None
    notice = received.notice
    assert (notice.out_trade_no, notice.trade_no, notice.amount_fen, notice.merchant_ref, notice.paid) == (
        order_id, paid["trade_no"], 3000, DIRECT_MCH_ID, True)
    fields = from_xml(received.body)
    assert (fields["trade_type"], fields["openid"]) == ("JSAPI", HOLDER)  # paid by the openid named

    assert _confirm(sandbox, created.prepay_id) == (409, {"ok": False, "error": "NOT_PAYABLE", "status": "SUCCESS"})
    assert channel.query(order_id).trade_status is TradeStatus.PAID
    assert len(receiver.received) == 1  # a refused second confirmation posts nothing


def test_page_parameters_are_signed_with_the_merchant_key(channel, settings_for, new_order_id):
    prepay_id = _jsapi(channel, new_order_id()).prepay_id
    params = channel.jsapi_params(prepay_id, timestamp=1_764_000_000, nonce_str="n" * 32)
    assert {k: v for k, v in params.items() if k != "paySign"} == {
        "appId": DIRECT_APPID, "timeStamp": "1764000000", "nonceStr": "n" * 32,
        "package": f"prepay_id={prepay_id}", "signType": "MD5"}
    # checked with the sandbox's own signer, written from the platform's rules, not wechatpy's
    unsigned = {k: v for k, v in params.items() if k != "paySign"}
    assert params["paySign"] == sign(unsigned, settings_for()["api_key"])
    bank = WeChatV2Settings.from_dict(settings_for(sub_mch_id="1", sub_appid=SUB_APPID))
    assert jsapi_params(bank, prepay_id, 1_764_000_000)["appId"] == SUB_APPID  # the payer's app


def test_bad_openid_is_refused_and_creates_no_trade(channel, new_order_id, sandbox):
    order_id = new_order_id()
    refused = _jsapi(channel, order_id, payer="not-an-openid")
    assert (refused.state, refused.code, refused.prepay_id) == (ChannelState.FAIL, "PARAM_ERROR", None)
    assert channel.query(order_id).trade_status is TradeStatus.NOT_FOUND
    assert _confirm(sandbox, "wx-unknown")[0] == 404


def test_sub_merchant_jsapi_uses_sub_openid(bank_channel, new_order_id, receiver_for, sandbox):
    receiver = receiver_for(bank_channel)
    payer = openid(SUB_APPID, "holder-2")
    created = _jsapi(bank_channel, new_order_id(), receiver.url, payer=payer, amount_fen=1)
    assert created.ok
    assert _confirm(sandbox, created.prepay_id)[0] == 200
    [received] = receiver.wait_for(1)
    assert received.rejected is None and from_xml(received.body)["sub_openid"] == payer
