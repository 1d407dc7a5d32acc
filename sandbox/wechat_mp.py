"""The WeChat Official Account (服务号) API, as far as card recharge uses it, for wechatpy to talk to.

Endpoints (paths as on api.weixin.qq.com and open.weixin.qq.com):
    GET  /cgi-bin/token?grant_type=client_credential&appid&secret    access token (7200 s)
    POST /cgi-bin/message/template/send?access_token=                 template message, {"errcode": 0, "msgid"}
    GET  /connect/oauth2/authorize?appid&redirect_uri&scope&state     302 to redirect_uri?code&state; which
                                                                      consumer logs in: `sandbox_user` (default "alice")
    GET  /sns/oauth2/access_token?appid&secret&code&grant_type        the code's openid (once, like WeChat)
Control:
    GET  /sandbox/wechat_mp/messages                                  every template message received

Access tokens behave as WeChat's do: a new one for an app id leaves the previous ones valid for
OLD_TOKEN_GRACE_S more, then only the newest works. `token_fetches[appid]` counts the fetches (tests
check that containers share one token); `revoke_tokens(appid)` plays WeChat invalidating them.

Errors are WeChat's JSON: 40001 invalid credential (wrong secret or token), 40013 invalid appid,
40029 invalid code, 40037 invalid template_id, 40003 invalid openid, 47001 bad data. The openid of
a consumer is the one sandbox.wechat_v2 uses for payments with the same app id.

accounts["wechat_mp"] = make_accounts_section({appid: make_app()}).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from urllib.parse import urlencode

from sandbox.http import Request, Response, Router
from sandbox.platform import SandboxContext
from sandbox.wechat_v2 import openid

NAME = "wechat_mp"
TOKEN_TTL_S = 7200
OLD_TOKEN_GRACE_S = 300  # WeChat: the previous access token keeps working 5 minutes after a new one


def make_app(secret: str | None = None, templates: tuple[str, ...] = ("TPL-RECHARGE",)) -> dict:
    return {"secret": secret or secrets.token_hex(16), "templates": list(templates)}


def make_accounts_section(apps: dict[str, dict]) -> dict:
    return {"apps": dict(apps)}


def _error(code: int, message: str) -> Response:
    return Response.json({"errcode": code, "errmsg": message})


class WeChatMpPlatform:
    name = NAME
    wallet = "wechat"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.apps: dict[str, dict] = dict((ctx.accounts.get(NAME) or {}).get("apps") or {})
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (appid, expires_at)
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (appid, openid), used once
        self.messages: list[dict] = []
        self.token_fetches: Counter[str] = Counter()  # appid -> access tokens handed out

    def revoke_tokens(self, appid: str) -> None:
        """Every token of the app stops working now (as when someone resets the app secret)."""
        with self._lock:
            for token, (owner, _) in list(self._tokens.items()):
                if owner == appid:
                    self._tokens[token] = (owner, 0.0)

    def register(self, router: Router) -> None:
        router.add("GET", "/cgi-bin/token", self._token)
        router.add("POST", "/cgi-bin/message/template/send", self._send_template)
        router.add("GET", "/connect/oauth2/authorize", self._authorize)
        router.add("GET", "/sns/oauth2/access_token", self._oauth_token)
        router.add("GET", "/sandbox/wechat_mp/messages", lambda _: Response.json(self.messages))

    def notification(self, trade: object) -> None:
        return None  # no payments here: recharges are paid through sandbox.wechat_v2

    def _app(self, request: Request) -> tuple[str, dict] | Response:
        appid = request.form().get("appid", "")
        app = self.apps.get(appid)
        if app is None:
            return _error(40013, "invalid appid")
        if request.form().get("secret") != app["secret"]:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        return appid, app

    def _token(self, request: Request) -> Response:
        found = self._app(request)
        if isinstance(found, Response):
            return found
        token = secrets.token_urlsafe(24)
        now = self.ctx.clock()
        with self._lock:
            for old, (owner, expires_at) in list(self._tokens.items()):
                if owner == found[0]:
                    self._tokens[old] = (owner, min(expires_at, now + OLD_TOKEN_GRACE_S))
            self._tokens[token] = (found[0], now + TOKEN_TTL_S)
            self.token_fetches[found[0]] += 1
        return Response.json({"access_token": token, "expires_in": TOKEN_TTL_S})

    def _send_template(self, request: Request) -> Response:
        token = (request.query.get("access_token") or [""])[-1]
        with self._lock:
            held = self._tokens.get(token)
        if held is None or held[1] < self.ctx.clock():
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        appid = held[0]
        try:
            data = request.json()
        except ValueError:
            return _error(47001, "data format error")
        if data.get("template_id") not in self.apps[appid]["templates"]:
            return _error(40037, "invalid template_id")
        if not str(data.get("touser", "")).startswith("o"):
            return _error(40003, "invalid openid")
        if not isinstance(data.get("data"), dict):
            return _error(47001, "data format error")
        msgid = int(time.time() * 1000) % 10**12 + len(self.messages)
        with self._lock:
            self.messages.append({"appid": appid, "msgid": msgid, **data})
        return Response.json({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    def _authorize(self, request: Request) -> Response:
        form = request.form()
        appid, redirect = form.get("appid", ""), form.get("redirect_uri", "")
        if appid not in self.apps or not redirect:
            return Response.text("invalid appid or redirect_uri", 400)
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = (appid, openid(appid, form.get("sandbox_user", "alice")))
        query = urlencode({"code": code, "state": form.get("state", "")})
        return Response(302, b"", {"Location": f"{redirect}{'&' if '?' in redirect else '?'}{query}"})

    def _oauth_token(self, request: Request) -> Response:
        found = self._app(request)
        if isinstance(found, Response):
            return found
        with self._lock:
            held = self._codes.pop(request.form().get("code", ""), None)
        if held is None or held[0] != found[0]:
            return _error(40029, "invalid code")
        return Response.json({"access_token": secrets.token_urlsafe(24), "expires_in": TOKEN_TTL_S,
                              "refresh_token": secrets.token_urlsafe(24), "openid": held[1], "scope": "snsapi_base"})


def build(ctx: SandboxContext) -> WeChatMpPlatform:
    return WeChatMpPlatform(ctx)
