"""JSAPI prepay for an online card recharge (the holder pays inside WeChat), with wechatpy directly.

A thin stand-in until chalicelib/channels/wechat_v2.py has a JSAPI capability: it builds the same
wechatpy client from the merchant's WeChat channel settings and asks unifiedorder for
trade_type=JSAPI, then signs the parameters the page hands to WeixinJSBridge. Any exception or odd
answer is ChannelUnavailable (the order stays CREATED: a notification may still come).
NOTE: sandbox/wechat_v2.py answers unifiedorder for NATIVE only, so this path is not yet exercised
against the sandbox (see the issue note).
"""
from __future__ import annotations

import time
from typing import Protocol

from chalicelib.domain.errors import ChannelUnavailable, NotConfigured
from chalicelib.store.directory import Directory


class JsapiPrepay(Protocol):
    def prepay(self, merchant_id: str, out_trade_no: str, amount_fen: int, openid: str, description: str,
               notify_url: str) -> dict: ...


class WeChatJsapi:
    def __init__(self, directory: Directory, gateway: str | None, timeout_s: float = 5.0) -> None:
        self._directory = directory
        self._gateway = gateway
        self._timeout = timeout_s

    def prepay(self, merchant_id: str, out_trade_no: str, amount_fen: int, openid: str, description: str,
               notify_url: str) -> dict:
        from chalicelib.channels.wechat_v2 import SANDBOX_PREFIX, WECHAT_GATEWAY, _client_class

        config = self._directory.channel_config(merchant_id, "wechat")
        if config is None or config.kind != "wechat_v2":
            raise NotConfigured("online recharge needs the merchant's WeChat Pay v2 account")
        s = config.settings
        client = _client_class()(appid=s["appid"], api_key=s["api_key"], mch_id=s["mch_id"],
                                 sub_mch_id=s.get("sub_mch_id") or None, timeout=self._timeout)
        client.API_BASE_URL = self._gateway.rstrip("/") + SANDBOX_PREFIX + "/" if self._gateway else WECHAT_GATEWAY
        try:
            answer = client.order.create(trade_type="JSAPI", body=description, total_fee=amount_fen,
                                         notify_url=notify_url, user_id=openid, out_trade_no=out_trade_no)
            prepay_id = answer["prepay_id"]
            return client.jsapi.get_jsapi_params(prepay_id, timestamp=int(time.time()))
        except Exception as error:  # the SDK raises many kinds: all mean "no definite answer"
            raise ChannelUnavailable(f"JSAPI prepay: {type(error).__name__}") from error
