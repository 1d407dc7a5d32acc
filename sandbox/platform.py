"""What each simulated platform plugs into the sandbox, and the context it gets.

A platform module (wechat_v2, wechat_v3, alipay) registers its endpoints on the router, knows
how to sign and post a payment notification for one of its trades, and does everything else
through the shared TradeBook, so /sandbox/scan and bills work the same for all of them.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from sandbox.http import Router
from sandbox.notifier import Delivery, Notifier
from sandbox.trades import SimTrade, TradeBook

WECHAT_USER_AGENT = "Mozilla/5.0 (Linux; Android 14) Mobile MicroMessenger/8.0.50.2600 NetType/WIFI"
ALIPAY_USER_AGENT = "Mozilla/5.0 (Linux; Android 14) Mobile AlipayClient/10.6.0.8000 NetType/WIFI"
WALLET_USER_AGENTS = {"wechat": WECHAT_USER_AGENT, "alipay": ALIPAY_USER_AGENT}


@dataclass
class SandboxContext:
    book: TradeBook
    notifier: Notifier
    accounts: dict  # per platform name: that platform's merchant accounts and its own keys (keys.py)
    base_url: str  # where the sandbox is reachable, e.g. http://127.0.0.1:8002
    clock: Callable[[], float] = time.time
    platforms: dict[str, "Platform"] = field(default_factory=dict)

    def new_trade_no(self, prefix: str) -> str:
        return f"{prefix}{time.strftime('%Y%m%d')}{self.book.next_serial():010d}{secrets.randbelow(10**6):06d}"


class Platform(Protocol):
    name: str  # "wechat_v2", "wechat_v3", "alipay"
    wallet: str  # "wechat" or "alipay"

    def register(self, router: Router) -> None: ...

    def notification(self, trade: SimTrade) -> Delivery | None:
        """The signed notification for a just-paid trade, or None when the trade has no notify_url."""


def settle_payment(ctx: SandboxContext, trade: SimTrade, payer: str, notify: bool = True) -> SimTrade:
    """Mark a trade paid (caller holds ctx.book.lock and checked its status) and post its notification."""
    platform = ctx.platforms[trade.platform]
    trade.status = "SUCCESS"
    trade.paid_at = ctx.clock()
    trade.payer = payer
    if not trade.trade_no:
        trade.trade_no = ctx.new_trade_no("42" if platform.wallet == "wechat" else "2026")
    if notify and trade.notify_url:
        delivery = platform.notification(trade)
        if delivery is not None:
            ctx.notifier.submit(delivery)
    return trade
