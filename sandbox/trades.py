"""What the sandbox platform remembers: trades, their payments and refunds (in memory).

One TradeBook serves every simulated platform; `platform` says whose trade it is. Bills for
reconciliation are made later from the same records.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable


REFUND_OUTCOMES = {"instant": "SUCCESS", "processing": "PROCESSING", "fail": "FAILED"}
REFUND_WALLETS = ("wechat", "alipay")


@dataclass
class SimRefund:
    out_refund_no: str
    refund_id: str
    amount_fen: int
    created_at: float
    # SUCCESS: the money went back. PROCESSING: accepted, not finished (TradeBook.finish_refund ends
    # it). FAILED: accepted, then the money could not go back (WeChat CHANGE / v3 ABNORMAL; Alipay then
    # no longer lists it, and takes the same out_request_no again as a new attempt).
    status: str = "SUCCESS"


@dataclass
class SimTrade:
    platform: str  # "wechat_v2" | "wechat_v3" | "alipay"
    merchant_key: str  # mch_id (+ sub_mch_id) or app_id (+ app_auth_token's merchant): whose trade
    out_trade_no: str
    amount_fen: int
    description: str
    notify_url: str
    trade_type: str  # NATIVE / MICROPAY (WeChat), PRECREATE / PAY (Alipay)
    created_at: float
    expires_at: float | None = None
    status: str = "NOTPAY"  # NOTPAY, USERPAYING, SUCCESS, CLOSED, REVOKED, PAYERROR, REFUND
    code_url: str = ""
    trade_no: str = ""
    paid_at: float | None = None
    payer: str = ""  # openid / buyer id of the consumer
    extra: dict = field(default_factory=dict)  # platform-specific fields (appid, sub_mch_id, ...)
    refunds: list[SimRefund] = field(default_factory=list)
    userpaying_polls_left: int = 0  # payment codes that make the consumer type a password

    @property
    def refunded_fen(self) -> int:
        """Refunded or being refunded: a failed refund gives its amount back to the trade."""
        return sum(r.amount_fen for r in self.refunds if r.status != "FAILED")

    @property
    def refunds_done(self) -> list[SimRefund]:
        """The refunds whose money went back: what bills show."""
        return [r for r in self.refunds if r.status == "SUCCESS"]


class TradeBook:
    """Thread-safe: the HTTP server handles requests on many threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._trades: dict[tuple[str, str, str], SimTrade] = {}
        self._by_code_url: dict[str, SimTrade] = {}
        self._serial = itertools.count(1)
        # statuses of the next new refunds per wallet (plan_refunds)
        self._refund_plan: dict[str, list[str]] = {wallet: [] for wallet in REFUND_WALLETS}

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def next_serial(self) -> int:
        return next(self._serial)

    def get(self, platform: str, merchant_key: str, out_trade_no: str) -> SimTrade | None:
        with self._lock:
            return self._trades.get((platform, merchant_key, out_trade_no))

    def add(self, trade: SimTrade) -> SimTrade:
        with self._lock:
            self._trades[(trade.platform, trade.merchant_key, trade.out_trade_no)] = trade
            if trade.code_url:
                self._by_code_url[trade.code_url] = trade
            return trade

    def by_code_url(self, code_url: str) -> SimTrade | None:
        with self._lock:
            return self._by_code_url.get(code_url)

    def all(self) -> Iterable[SimTrade]:
        with self._lock:
            return list(self._trades.values())

    def plan_refunds(self, outcome: str, count: int = 1, wallet: str = "wechat") -> None:
        """The next `count` new refunds of a wallet stay PROCESSING ("processing") or fail ("fail"),
        instead of completing at once ("instant"). WeChat (v2 and v3) accepts a failing refund and fails
        it afterwards; Alipay refuses it outright (ACQ.SELLER_BALANCE_NOT_ENOUGH) and answers a
        processing one with fund_change N."""
        if outcome not in REFUND_OUTCOMES or count < 1 or wallet not in REFUND_WALLETS:
            raise ValueError(f"outcome is one of {sorted(REFUND_OUTCOMES)}, count at least 1, "
                             f"wallet one of {list(REFUND_WALLETS)}")
        with self._lock:
            self._refund_plan[wallet].extend([REFUND_OUTCOMES[outcome]] * count)

    def next_refund_status(self, wallet: str = "wechat") -> str:
        with self._lock:
            plan = self._refund_plan[wallet]
            return plan.pop(0) if plan else "SUCCESS"

    def finish_refund(self, out_refund_no: str, status: str, now: float | None = None) -> SimRefund | None:
        """A PROCESSING refund completes (SUCCESS) or fails (FAILED); None when there is no such refund
        still processing."""
        if status not in ("SUCCESS", "FAILED"):
            raise ValueError("a refund finishes SUCCESS or FAILED")
        with self._lock:
            for trade in self._trades.values():
                for refund in trade.refunds:
                    if refund.out_refund_no == out_refund_no and refund.status == "PROCESSING":
                        refund.status = status
                        if status == "SUCCESS":
                            refund.created_at = time.time() if now is None else now  # when the money went back
                        return refund
        return None

    def expire_due(self, now: float | None = None) -> None:
        """Platforms close unpaid QR trades by themselves at their expiry time."""
        now = time.time() if now is None else now
        with self._lock:
            for trade in self._trades.values():
                if trade.status == "NOTPAY" and trade.expires_at and trade.expires_at < now:
                    trade.status = "CLOSED"


def payment_code_wallet(auth_code: str) -> str | None:
    """The wallet a payment code belongs to: 18 digits starting 10..15 WeChat, 25..30 Alipay."""
    if len(auth_code) != 18 or not auth_code.isdigit():
        return None
    prefix = int(auth_code[:2])
    if 10 <= prefix <= 15:
        return "wechat"
    if 25 <= prefix <= 30:
        return "alipay"
    return None


def payment_code_behaviour(auth_code: str) -> str:
    """How the simulated consumer behaves, chosen by the code's last four digits (see sandbox/README.md):
    ...0000 pays after typing a password (USERPAYING for two queries), ...9999 has no money (fails),
    ...8888 types a password and never finishes (stays USERPAYING), anything else pays at once."""
    tail = auth_code[-4:]
    return {"0000": "password", "9999": "no_money", "8888": "abandon"}.get(tail, "instant")
