"""An in-memory payment channel for pure tests of the services' logic (passed in via the Container).

It is not a stand-in for any platform's protocol (the sandbox is): it only plays the answers a
service must cope with: SUCCESS, FAIL, UNKNOWN, payments made behind the service's back.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Mapping

from chalicelib.channels.base import (
    ChannelResult,
    ChannelState,
    HttpReply,
    NativeOrderRequest,
    NotificationRejected,
    PaymentNotice,
    RefundRequest,
    ScanPayRequest,
    TradeStatus,
)
from chalicelib.store.directory import ChannelConfig

FAKE_KEY = b"fake-channel-key"


@dataclass
class FakeTrade:
    out_trade_no: str
    amount_fen: int
    status: TradeStatus = TradeStatus.NOT_PAID
    trade_no: str = ""
    polls_until_paid: int = 0


@dataclass
class FakeChannel:
    wallet: str
    name: str = "fake"
    merchant_ref: str = "MCH1"
    trades: dict[str, FakeTrade] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    refunds: dict[str, RefundRequest] = field(default_factory=dict)
    next_answer: dict[str, ChannelState] = field(default_factory=dict)  # capability -> forced state once
    next_error: dict[str, Exception] = field(default_factory=dict)  # capability -> raised once (a bug, a crash)
    # refunds: out_refund_no -> SUCCESS | PROCESSING | FAILED; new refunds take the next planned state
    refund_states: dict[str, str] = field(default_factory=dict)
    next_refund_states: list[str] = field(default_factory=list)

    def _forced(self, capability: str) -> ChannelResult | None:
        error = self.next_error.pop(capability, None)
        if error is not None:
            raise error
        state = self.next_answer.pop(capability, None)
        if state is None:
            return None
        return ChannelResult(state, code="FORCED", message=f"forced {state.value}")

    def create_native_qr(self, request: NativeOrderRequest) -> ChannelResult:
        self.calls.append(("create_native_qr", request.out_trade_no))
        forced = self._forced("create_native_qr")
        if forced:
            return forced
        self.trades.setdefault(request.out_trade_no, FakeTrade(request.out_trade_no, request.amount_fen))
        return ChannelResult(ChannelState.SUCCESS, qr=f"fake://{self.wallet}/{request.out_trade_no}")

    def scan_pay(self, request: ScanPayRequest) -> ChannelResult:
        self.calls.append(("scan_pay", request.out_trade_no))
        forced = self._forced("scan_pay")  # e.g. UNKNOWN: the request was lost on the way
        if forced:
            return forced
        behaviour = request.auth_code[-4:]
        trade = self.trades.setdefault(request.out_trade_no, FakeTrade(request.out_trade_no, request.amount_fen))
        if behaviour == "9999":
            trade.status = TradeStatus.CLOSED
            return ChannelResult(ChannelState.FAIL, code="NOTENOUGH", message="余额不足")
        if behaviour in ("0000", "8888"):
            trade.status = TradeStatus.USER_PAYING
            trade.polls_until_paid = 2 if behaviour == "0000" else 10**9
            return ChannelResult(ChannelState.UNKNOWN, trade_status=TradeStatus.USER_PAYING, code="USERPAYING")
        self.pay(request.out_trade_no)
        return self._paid(trade)

    def pay(self, out_trade_no: str) -> FakeTrade:
        """A consumer pays (or the platform completes) behind the service's back."""
        trade = self.trades[out_trade_no]
        trade.status = TradeStatus.PAID
        trade.trade_no = trade.trade_no or f"T{self.wallet[0].upper()}{out_trade_no}"
        return trade

    def _paid(self, trade: FakeTrade) -> ChannelResult:
        return ChannelResult(ChannelState.SUCCESS, trade_status=TradeStatus.PAID, trade_no=trade.trade_no,
                             amount_fen=trade.amount_fen, paid_at=1_795_000_001.0)

    def query(self, out_trade_no: str) -> ChannelResult:
        self.calls.append(("query", out_trade_no))
        forced = self._forced("query")
        if forced:
            return forced
        trade = self.trades.get(out_trade_no)
        if trade is None:
            return ChannelResult(ChannelState.SUCCESS, trade_status=TradeStatus.NOT_FOUND)
        if trade.status is TradeStatus.USER_PAYING:
            trade.polls_until_paid -= 1
            if trade.polls_until_paid <= 0:
                self.pay(out_trade_no)
        if trade.status is TradeStatus.PAID:
            return self._paid(trade)
        return ChannelResult(ChannelState.SUCCESS, trade_status=trade.status)

    def close(self, out_trade_no: str) -> ChannelResult:
        self.calls.append(("close", out_trade_no))
        forced = self._forced("close")
        if forced:
            return forced
        trade = self.trades.get(out_trade_no)
        if trade is not None and trade.status is TradeStatus.PAID:
            return ChannelResult(ChannelState.FAIL, code="ORDERPAID")
        if trade is not None:
            trade.status = TradeStatus.CLOSED
        return ChannelResult(ChannelState.SUCCESS)

    def cancel(self, out_trade_no: str) -> ChannelResult:
        self.calls.append(("cancel", out_trade_no))
        forced = self._forced("cancel")
        if forced:
            return forced
        trade = self.trades.get(out_trade_no)
        if trade is not None:
            trade.status = TradeStatus.CLOSED
        return ChannelResult(ChannelState.SUCCESS)

    def refund(self, request: RefundRequest) -> ChannelResult:
        self.calls.append(("refund", request.out_refund_no))
        forced = self._forced("refund")
        if forced:
            return forced
        if request.out_refund_no not in self.refunds:  # the platform refunds an id once
            self.refunds[request.out_refund_no] = request
            self.refund_states[request.out_refund_no] = self.next_refund_states.pop(0) if self.next_refund_states \
                else "SUCCESS"
        if self.refund_states[request.out_refund_no] == "SUCCESS":
            return ChannelResult(ChannelState.SUCCESS, TradeStatus.REFUNDED, trade_no=f"RF{request.out_refund_no}")
        return ChannelResult(ChannelState.SUCCESS, trade_no=f"RF{request.out_refund_no}", code="PROCESSING")

    def query_refund(self, out_trade_no: str, out_refund_no: str) -> ChannelResult:
        self.calls.append(("query_refund", out_refund_no))
        forced = self._forced("query_refund")
        if forced:
            return forced
        state = self.refund_states.get(out_refund_no)
        if state is None:
            return ChannelResult(ChannelState.FAIL, TradeStatus.NOT_FOUND, code="REFUNDNOTEXIST")
        if state == "SUCCESS":
            return ChannelResult(ChannelState.SUCCESS, TradeStatus.REFUNDED, trade_no=f"RF{out_refund_no}",
                                 code=state)
        if state == "FAILED":
            return ChannelResult(ChannelState.FAIL, trade_no=f"RF{out_refund_no}", code="CHANGE")
        return ChannelResult(ChannelState.UNKNOWN, trade_no=f"RF{out_refund_no}", code=state)

    # Notifications: JSON body, HMAC over the raw body in a header.
    def notification(self, out_trade_no: str, amount_fen: int | None = None, merchant_ref: str | None = None,
                     trade_no: str | None = None) -> tuple[dict[str, str], bytes]:
        trade = self.trades[out_trade_no]
        body = json.dumps({
            "out_trade_no": out_trade_no, "trade_no": trade_no or trade.trade_no,
            "amount_fen": trade.amount_fen if amount_fen is None else amount_fen,
            "merchant_ref": merchant_ref or self.merchant_ref, "paid": True,
        }).encode()
        return {"x-fake-signature": hmac.new(FAKE_KEY, body, hashlib.sha256).hexdigest()}, body

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        expected = hmac.new(FAKE_KEY, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("x-fake-signature", "")):
            raise NotificationRejected("bad signature")
        data = json.loads(body)
        if data["merchant_ref"] != self.merchant_ref:
            raise NotificationRejected("not our merchant")
        return PaymentNotice(data["out_trade_no"], data["trade_no"], int(data["amount_fen"]), 1_795_000_001.0,
                             data["merchant_ref"], bool(data["paid"]))

    def ack(self) -> HttpReply:
        return HttpReply(200, "ok", {"Content-Type": "text/plain"})

    def nack(self, reason: str) -> HttpReply:
        return HttpReply(400, f"fail: {reason}", {"Content-Type": "text/plain"})


class FakeChannels:
    """The Channels port: one FakeChannel per wallet, the same for every merchant."""

    def __init__(self) -> None:
        self.by_wallet = {"wechat": FakeChannel("wechat", name="fake_wechat"),
                          "alipay": FakeChannel("alipay", name="fake_alipay")}
        self.kind = {"wechat": "wechat_v2", "alipay": "alipay"}

    def for_merchant(self, merchant_id: str, wallet: str) -> tuple[FakeChannel, ChannelConfig] | None:
        channel = self.by_wallet.get(wallet)
        if channel is None:
            return None
        return channel, ChannelConfig(wallet, self.kind[wallet], {})
