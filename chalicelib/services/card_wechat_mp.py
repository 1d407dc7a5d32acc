"""The merchant's WeChat Official Account (服务号) through wechatpy: OAuth for the card holder's
openid and the 充值成功通知 template message.

The app id and its secret are the merchant's WeChat channel settings (`appid`, and `mp_secret`
sealed with the other secrets). `gateway` (CHANNEL_GATEWAY) points the SDK at the sandbox locally;
None keeps WeChat's own hosts. wechatpy is imported lazily (it is not needed on the payment path).

The access token is shared by all containers through DynamoDB (services/card_mp_token.py): the
client asks MpTokens for it instead of fetching its own, and a token WeChat refuses as invalid
(40001, 40014, 42001) is replaced once and the call retried once (wechatpy's own retry, which would
fetch per container and recurse while WeChat refuses, is off).
"""
from __future__ import annotations

import functools
import threading
from typing import Any

from chalicelib.domain.errors import InvalidRequest, NotConfigured
from chalicelib.services.card_mp_token import MpTokens, TokenUnavailable
from chalicelib.store.directory import Directory

WECHAT_API = "https://api.weixin.qq.com"
WECHAT_OPEN = "https://open.weixin.qq.com"
INVALID_TOKEN = (40001, 40014, 42001)  # invalid credential, invalid token, expired token


class NoticeFailed(Exception):
    """The template message was not accepted (or no answer came): retried later, never undoing the recharge."""


@functools.cache
def _sdk() -> tuple[type, type]:
    from wechatpy import WeChatClient
    from wechatpy.oauth import WeChatOAuth

    class GatewayClient(WeChatClient):
        """WeChatClient whose token URL follows API_BASE_URL (wechatpy hard-codes WeChat's host there)
        and whose access token comes from the shared MpTokens."""

        def __init__(self, appid: str, secret: str, api_base: str, timeout: float, tokens: MpTokens) -> None:
            super().__init__(appid, secret, timeout=timeout, auto_retry=False)
            self.API_BASE_URL = f"{api_base}/cgi-bin/"  # this instance only
            self._tokens = tokens

        @property
        def access_token(self) -> str:  # type: ignore[override]
            return self._tokens.token(self.appid, self.fetch_new_token)

        def renew_access_token(self) -> str:
            return self._tokens.invalidate(self.appid, self.fetch_new_token)

        def fetch_new_token(self) -> tuple[str, int]:
            """One fetch from WeChat (only MpTokens calls this, for every container at once)."""
            answer = self._fetch_access_token(url=f"{self.API_BASE_URL}token", params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})
            return str(answer["access_token"]), int(answer.get("expires_in", 7200))

        def fetch_access_token(self) -> Any:
            self.renew_access_token()

    return GatewayClient, WeChatOAuth


class WeChatMp:
    def __init__(self, directory: Directory, gateway: str | None, tokens: MpTokens, timeout_s: float = 5.0) -> None:
        self._directory = directory
        self._tokens = tokens
        self._api = gateway.rstrip("/") if gateway else WECHAT_API
        self._open = gateway.rstrip("/") if gateway else WECHAT_OPEN
        self._timeout = timeout_s
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _credentials(self, merchant_id: str) -> tuple[str, str]:
        config = self._directory.channel_config(merchant_id, "wechat")
        settings = config.settings if config else {}
        if not settings.get("appid") or not settings.get("mp_secret"):
            raise NotConfigured("the merchant's 服务号 (appid, mp_secret) is not configured")
        return settings["appid"], settings["mp_secret"]

    def _client(self, merchant_id: str) -> Any:
        with self._lock:
            client = self._clients.get(merchant_id)
            if client is None:
                appid, secret = self._credentials(merchant_id)
                client = self._clients[merchant_id] = _sdk()[0](appid, secret, self._api, self._timeout,
                                                                self._tokens)
            return client

    def send_template(self, merchant_id: str, openid: str, template_id: str, data: dict, url: str = "") -> int:
        """The message id; NoticeFailed for any refusal or failure to get an answer."""
        from wechatpy.exceptions import WeChatException
        from requests import RequestException

        client = self._client(merchant_id)
        try:
            try:
                answer = client.message.send_template(openid, template_id, data, url=url or None)
            except WeChatException as error:
                if getattr(error, "errcode", None) not in INVALID_TOKEN:
                    raise
                client.renew_access_token()  # once for all containers; then one more try
                answer = client.message.send_template(openid, template_id, data, url=url or None)
        except (WeChatException, RequestException, ValueError, KeyError) as error:
            raise NoticeFailed(_describe(error)) from error
        except TokenUnavailable as error:
            raise NoticeFailed(str(error)) from error
        return int(answer.get("msgid", 0))

    def _oauth(self, merchant_id: str, redirect_uri: str = "", state: str = "") -> Any:
        appid, secret = self._credentials(merchant_id)
        oauth = _sdk()[1](appid, secret, redirect_uri, scope="snsapi_base", state=state)
        oauth.API_BASE_URL = f"{self._api}/"
        oauth.OAUTH_BASE_URL = f"{self._open}/connect/"
        return oauth

    def authorize_url(self, merchant_id: str, redirect_uri: str, state: str) -> str:
        return self._oauth(merchant_id, redirect_uri, state).authorize_url

    def openid_from_code(self, merchant_id: str, code: str) -> str:
        from wechatpy.exceptions import WeChatException
        from requests import RequestException

        try:
            return str(self._oauth(merchant_id).fetch_access_token(code)["openid"])
        except (WeChatException, RequestException, KeyError) as error:
            raise InvalidRequest("the WeChat login code was not accepted") from error


def _describe(error: Exception) -> str:
    """What the console shows: WeChat's errcode and errmsg, or the HTTP status that came instead."""
    response = getattr(error, "response", None)
    status = f" HTTP {response.status_code}" if response is not None else ""
    code = getattr(error, "errcode", None)
    detail = f" errcode {code} {getattr(error, 'errmsg', '')}" if code is not None else f" {error}"
    return f"{type(error).__name__}{status}{detail}".strip()
