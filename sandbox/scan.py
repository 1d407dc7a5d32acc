"""POST /sandbox/scan: a consumer scans the QR the terminal shows and pays.

The QR is either a channel's own code URL (weixin://wxpay/..., https://qr.alipay.com/...) or our
aggregated URL, which the consumer's wallet opens with its own User-Agent; we follow its redirects
until they reach a code URL the sandbox issued.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urljoin

from sandbox.http import Request, Response
from sandbox.platform import WALLET_USER_AGENTS, SandboxContext, settle_payment
from sandbox.trades import SimTrade

MAX_REDIRECTS = 5


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # we follow by hand, to stop at a wallet scheme URL


def _open_in_wallet(ctx: SandboxContext, url: str, wallet: str) -> SimTrade | None:
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(MAX_REDIRECTS):
        trade = ctx.book.by_code_url(url)
        if trade is not None or not url.startswith("http"):
            return trade
        request = urllib.request.Request(url, headers={"User-Agent": WALLET_USER_AGENTS[wallet]})
        try:
            with opener.open(request, timeout=10) as answer:
                return None  # a page, not a redirect: nothing to pay
        except urllib.error.HTTPError as error:
            location = error.headers.get("Location")
            if error.code not in (301, 302, 303, 307, 308) or not location:
                return None
            url = urljoin(url, location)
        except OSError:
            return None
    return ctx.book.by_code_url(url)


def make_scan_handler(ctx: SandboxContext):  # type: ignore[no-untyped-def]
    def scan(request: Request) -> Response:
        try:
            data = request.json()
            qr, wallet = str(data["qr"]), str(data["wallet"])
        except (ValueError, KeyError, TypeError):
            return Response.json({"ok": False, "error": "BAD_REQUEST", "message": "need qr and wallet"}, 400)
        if wallet not in WALLET_USER_AGENTS:
            return Response.json({"ok": False, "error": "BAD_WALLET", "message": "wallet is wechat or alipay"}, 400)
        trade = _open_in_wallet(ctx, qr, wallet)
        if trade is None:
            return Response.json({"ok": False, "error": "UNKNOWN_QR", "message": "no payable trade behind this QR"}, 404)
        platform = ctx.platforms[trade.platform]
        if platform.wallet != wallet:
            return Response.json({"ok": False, "error": "WRONG_WALLET", "message": f"open it in {platform.wallet}"}, 409)
        ctx.book.expire_due(ctx.clock())
        with ctx.book.lock:
            if trade.status != "NOTPAY":
                return Response.json({"ok": False, "error": "NOT_PAYABLE", "status": trade.status}, 409)
            settle_payment(ctx, trade, payer=data.get("payer") or f"sandbox-{wallet}-user")
        return Response.json({
            "ok": True,
            "platform": trade.platform,
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
            "amount_fen": trade.amount_fen,
        })

    return scan
