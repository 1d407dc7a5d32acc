"""JSAPI prepay for an online card recharge (the holder pays inside WeChat), through the channel.

Builds the merchant's WeChat Pay v2 channel (chalicelib/channels/wechat_v2.py) from its directory
settings, asks it for a JSAPI prepay (unifiedorder trade_type=JSAPI with the holder's openid) and
signs the parameters the page hands to WeixinJSBridge with the channel's jsapi_params. The payment
itself is confirmed only by the platform's notification (/cards/notify/<merchant>).

A FAIL answer (the platform refused: bad openid, duplicate order) and an UNKNOWN one (timeout, 5xx,
bad signature) both raise ChannelUnavailable: the order stays CREATED, a notification may still come.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol

from chalicelib.domain.errors import ChannelUnavailable, NotConfigured
from chalicelib.store.directory import Directory

PREPAY_TTL_S = 30 * 60  # the holder confirms within minutes; the platform closes the trade after this


class JsapiPrepay(Protocol):
    def prepay(self, merchant_id: str, out_trade_no: str, amount_fen: int, openid: str, description: str,
               notify_url: str) -> dict: ...


class WeChatJsapi:
    def __init__(self, directory: Directory, gateway: str | None, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._directory = directory
        self._gateway = gateway
        self._timeout = timeout_s
        self._clock = clock

    def prepay(self, merchant_id: str, out_trade_no: str, amount_fen: int, openid: str, description: str,
               notify_url: str) -> dict:
        from chalicelib.channels.wechat_v2 import build

        config = self._directory.channel_config(merchant_id, "wechat")
        if config is None or config.kind != "wechat_v2":
            raise NotConfigured("online recharge needs the merchant's WeChat Pay v2 account")
        channel = build(config.settings, self._gateway, self._timeout, self._clock)
        now = self._clock()
        result = channel.create_jsapi(out_trade_no, amount_fen, description, notify_url, openid,
                                      expires_at=now + PREPAY_TTL_S)
        if not result.ok or not result.prepay_id:
            raise ChannelUnavailable(f"JSAPI prepay {result.state.value}: {result.code} {result.message}"[:200])
        return channel.jsapi_params(result.prepay_id, timestamp=now)
