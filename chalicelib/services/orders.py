"""Use cases of terminal orders: create a QR order, scan a payment code, query, cancel.

Idempotent per (terminal, txn): the dedupe record written with the order makes a retried create
return the first order; the same txn with a different amount is refused (Conflict).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Callable

from chalicelib.channels.base import (
    ChannelResult,
    ChannelState,
    NativeOrderRequest,
    PaymentChannel,
    ScanPayRequest,
    TradeStatus,
)
from chalicelib.domain.clock import Clock, Sleep
from chalicelib.domain.errors import ChannelUnavailable, Conflict, InvalidRequest, NotConfigured, NotFound
from chalicelib.domain.ids import new_order_id
from chalicelib.domain.money import format_yuan
from chalicelib.domain.orders import Order, OrderKind, OrderStatus, Wallet, check_amount
from chalicelib.domain.payment_codes import wallet_of_payment_code
from chalicelib.services.payments import PaymentBooker
from chalicelib.services.ports import Channels
from chalicelib.store.dedupe import DedupeStore
from chalicelib.store.directory import Directory, TerminalInfo
from chalicelib.store.orders import ConditionFailed, OrderStore, PaymentBooking

log = logging.getLogger(__name__)

SCAN_PAY_TTL_S = 45  # WeChat and Alipay: poll about 30 s, then reverse/cancel an unconfirmed payment code
SCAN_PAY_POLLS = (2.0, 3.0, 5.0)  # waits between queries while the consumer types a password


@dataclass(frozen=True)
class OrderSettings:
    public_base_url: str
    qr_order_ttl_s: int


def txn_key(terminal_id: str, txn: int) -> str:
    return f"txn#{terminal_id}#{txn}"


def request_hash(kind: OrderKind, amount_fen: int, detail: str) -> str:
    return hashlib.sha256(f"{kind.value}|{amount_fen}|{detail}".encode()).hexdigest()[:32]


def notify_url(base_url: str, kind: str, merchant_id: str) -> str:
    return f"{base_url}/notify/{kind}/{merchant_id}"


def terminal_status(order: Order) -> str:
    """The status words of protocol.md's QUERY and SCAN_PAY answers."""
    if order.status is OrderStatus.CREATED:
        return "PAYING"
    if order.status is OrderStatus.CLOSED:
        return "FAILED" if order.kind is OrderKind.SCAN_PAY else "CLOSED"
    return "PAID"


def order_view(order: Order, now: float) -> dict:
    return {
        "order_id": order.order_id,
        "txn": order.txn,
        "amount_fen": order.amount_fen,
        "status": terminal_status(order),
        "order_status": order.status.value,
        "wallet": order.wallet.value if order.wallet else None,
        "expires_in": max(0, int(order.expires_at - now)),
    }


class OrderService:
    def __init__(self, orders: OrderStore, dedupe: DedupeStore, directory: Directory, channels: Channels,
                 booker: PaymentBooker, clock: Clock, sleep: Sleep, settings: OrderSettings,
                 licence_allows: Callable[[str, float], bool] = lambda merchant_id, now: True) -> None:
        """`licence_allows(merchant_id, now)`: False once the merchant's licence is past its grace
        period; then new QR orders get ERR011 while card payments, refunds and settlement go on."""
        self._orders = orders
        self._dedupe = dedupe
        self._directory = directory
        self._channels = channels
        self._booker = booker
        self._clock = clock
        self._sleep = sleep
        self._settings = settings
        self._licence_allows = licence_allows

    # --- QR orders -------------------------------------------------------------------------

    def create_qr_order(self, terminal: TerminalInfo, txn: int, amount_fen: int, wallet: str | None) -> dict:
        """An aggregated QR (wallet None: one URL that any supported wallet opens) or a wallet's own QR."""
        check_amount(amount_fen)
        chosen = Wallet(wallet) if wallet else None
        merchant = self._directory.merchant(terminal.merchant_id)
        if merchant is None or merchant.status != "active" or not merchant.wallets:
            raise NotConfigured("merchant has no payment channel configured")
        if chosen is not None and chosen.value not in merchant.wallets:
            raise NotConfigured(f"merchant does not take {chosen.value}")
        key = txn_key(terminal.terminal_id, txn)
        digest = request_hash(OrderKind.QR, amount_fen, chosen.value if chosen else "*")
        repeat = self._repeat_answer(key, digest)
        if repeat is not None:
            return repeat
        now = self._clock.now()
        if not self._licence_allows(terminal.merchant_id, now):
            raise NotConfigured("the merchant's service licence has expired")  # ERR011
        order_id = new_order_id(now)
        expires_at = now + self._settings.qr_order_ttl_s
        if chosen is None:
            qr = f"{self._settings.public_base_url}/pay/{order_id}"
        else:
            # The channel's trade is created before our write: if that write fails, the trade's QR
            # was never shown to anyone, and the platform closes it at expires_at by itself.
            channel, config = self._channel(terminal.merchant_id, chosen)
            result = channel.create_native_qr(NativeOrderRequest(
                order_id, amount_fen, self._description(merchant.name),
                notify_url(self._settings.public_base_url, config.kind, terminal.merchant_id), expires_at))
            qr = self._require_qr(result)
        order = Order(order_id, terminal.merchant_id, terminal.terminal_id, terminal.agent_id, txn, amount_fen,
                      OrderKind.QR, OrderStatus.CREATED, now, expires_at,
                      opened_wallets=(chosen.value,) if chosen else ())
        answer = {"order_id": order_id, "qr": qr, "expires_at": expires_at, "amount_fen": amount_fen}
        if not self._orders.create_once(order, qr, key, answer, digest):
            repeat = self._repeat_answer(key, digest)  # a concurrent retry won the race
            if repeat is None:
                raise Conflict("order creation raced and the winner vanished")
            return repeat
        return self._with_expiry(answer, now)

    def open_in_wallet(self, order_id: str, wallet: Wallet) -> str:
        """The aggregated QR was opened in a wallet: the code URL to continue with in that wallet."""
        stored = self._orders.get(order_id)
        if stored is None:
            raise NotFound("no such order")
        order = stored.order
        now = self._clock.now()
        if order.status is not OrderStatus.CREATED or order.expires_at <= now:
            raise InvalidRequest("this order can no longer be paid")
        existing = self._orders.wallet_qr(order_id, wallet)
        if existing:
            return existing
        channel, config = self._channel(order.merchant_id, wallet)
        if not self._orders.note_wallet_opening(order_id, wallet):
            raise InvalidRequest("this order can no longer be paid")
        merchant = self._directory.merchant(order.merchant_id)
        result = channel.create_native_qr(NativeOrderRequest(
            order_id, order.amount_fen, self._description(merchant.name if merchant else ""),
            notify_url(self._settings.public_base_url, config.kind, order.merchant_id), order.expires_at))
        code_url = self._require_qr(result)
        self._orders.save_wallet_qr(order_id, wallet, code_url)
        return code_url

    # --- payment codes -------------------------------------------------------------------------

    def scan_pay(self, terminal: TerminalInfo, txn: int, amount_fen: int, auth_code: str) -> dict:
        """Charge the consumer's payment code. Answers PAID, FAILED or PAYING (then QUERY later)."""
        check_amount(amount_fen)
        wallet = wallet_of_payment_code(auth_code)
        if wallet is None:
            raise InvalidRequest("not a WeChat or Alipay payment code")
        key = txn_key(terminal.terminal_id, txn)
        digest = request_hash(OrderKind.SCAN_PAY, amount_fen, auth_code)
        repeat = self._repeat_answer(key, digest)
        if repeat is not None:
            return self.query(terminal, txn)  # the current state, not a stale PAYING
        channel, _config = self._channel(terminal.merchant_id, wallet)
        merchant = self._directory.merchant(terminal.merchant_id)
        now = self._clock.now()
        order = Order(new_order_id(now), terminal.merchant_id, terminal.terminal_id, terminal.agent_id, txn,
                      amount_fen, OrderKind.SCAN_PAY, OrderStatus.CREATED, now, now + SCAN_PAY_TTL_S,
                      opened_wallets=(wallet.value,))
        # Persisted before the channel hears of it: whatever happens next, expiry can find it.
        answer = {"order_id": order.order_id, "qr": None, "expires_at": order.expires_at, "amount_fen": amount_fen}
        if not self._orders.create_once(order, None, key, answer, digest):
            return self.query(terminal, txn)
        result = channel.scan_pay(ScanPayRequest(order.order_id, amount_fen,
                                                 self._description(merchant.name if merchant else ""), auth_code))
        for wait in SCAN_PAY_POLLS:
            if result.state is not ChannelState.UNKNOWN:
                break
            self._sleep(wait)
            result = channel.query(order.order_id)
            if result.state is ChannelState.SUCCESS and result.trade_status is not TradeStatus.PAID:
                if result.trade_status in (TradeStatus.CLOSED, TradeStatus.REFUNDED):
                    result = ChannelResult(ChannelState.FAIL, trade_status=result.trade_status, code="CLOSED")
                else:
                    # Still paying, or NOT_FOUND after a lost request: not a failure. The order stays
                    # open; the terminal's QUERY or the expiry job queries, then cancels (reverse).
                    result = ChannelResult(ChannelState.UNKNOWN, trade_status=result.trade_status)
        return self._settle_scan_result(order, channel, result)

    def _settle_scan_result(self, order: Order, channel: PaymentChannel, result: ChannelResult) -> dict:
        """Book a payment, close a definite failure, or report PAYING for anything unsettled."""
        now = self._clock.now()
        if result.state is ChannelState.SUCCESS and result.trade_no:
            self._book(order, channel, result)
        elif result.state is ChannelState.FAIL:
            try:
                self._orders.close(order.order_id, now)
                return order_view(order, now) | {"status": "FAILED", "code": result.code, "msg": result.message}
            except ConditionFailed:
                pass  # something booked it meanwhile: report what is stored
        stored = self._orders.get(order.order_id)
        assert stored is not None
        return order_view(stored.order, now)

    # --- query and cancel -------------------------------------------------------------------

    def find(self, terminal: TerminalInfo, txn: int) -> Order:
        record = self._dedupe.get(txn_key(terminal.terminal_id, txn))
        if record is None or not record.ref.startswith("P"):
            raise NotFound("no order for this txn")
        stored = self._orders.get(record.ref)
        if stored is None or stored.order.terminal_id != terminal.terminal_id:
            raise NotFound("no order for this txn")
        return stored.order

    def query(self, terminal: TerminalInfo, txn: int) -> dict:
        """The order's state; an open order is checked at its channels first (the payment may have
        been made while its notification is still on the way)."""
        order = self.find(terminal, txn)
        if order.status is OrderStatus.CREATED:
            order = self.refresh(order)
        return order_view(order, self._clock.now())

    def refresh(self, order: Order) -> Order:
        """Ask each wallet where the order was opened whether it was paid; book it if so."""
        for wallet_name in order.opened_wallets:
            wallet = Wallet(wallet_name)
            found = self._channels.for_merchant(order.merchant_id, wallet.value)
            if found is None:
                continue
            channel, _ = found
            result = channel.query(order.order_id)
            if result.ok and result.trade_status is TradeStatus.PAID and result.trade_no:
                self._book(order, channel, result, wallet)
                break
        stored = self._orders.get(order.order_id)
        return stored.order if stored else order

    def cancel(self, terminal: TerminalInfo, txn: int) -> dict:
        """The terminal gave up on an order: close it at its channels, then here. A payment that
        beat the close is booked instead (and reported as PAID)."""
        order = self.find(terminal, txn)
        if order.status is OrderStatus.CREATED:
            order = self.close_everywhere(order)
        return order_view(order, self._clock.now()) | {"ok": order.status is OrderStatus.CLOSED}

    def close_everywhere(self, order: Order) -> Order:
        """Query, then close (QR) or cancel (payment code) at every wallet, then close our order.
        An UNKNOWN at any channel leaves the order open for the next try."""
        order = self.refresh(order)
        if order.status is not OrderStatus.CREATED:
            return order
        for wallet_name in order.opened_wallets:
            found = self._channels.for_merchant(order.merchant_id, wallet_name)
            if found is None:
                continue
            channel, _ = found
            result = channel.cancel(order.order_id) if order.kind is OrderKind.SCAN_PAY else channel.close(order.order_id)
            if result.state is ChannelState.UNKNOWN:
                return order
            if result.state is ChannelState.FAIL:
                refreshed = self.refresh(order)  # e.g. ORDERPAID: it was paid just now
                if refreshed.status is not OrderStatus.CREATED:
                    return refreshed
                if result.trade_status is not TradeStatus.NOT_FOUND and result.code not in CLOSED_ALREADY:
                    return order
        try:
            self._orders.close(order.order_id, self._clock.now())
        except ConditionFailed:
            pass  # paid (or closed) meanwhile: the stored state below says which
        stored = self._orders.get(order.order_id)
        return stored.order if stored else order

    # --- helpers ----------------------------------------------------------------------------

    def _book(self, order: Order, channel: PaymentChannel, result: ChannelResult, wallet: Wallet | None = None) -> None:
        wallet = wallet or Wallet(channel.wallet)
        amount = result.amount_fen if result.amount_fen is not None else order.amount_fen
        if amount != order.amount_fen:
            log.error("order %s: channel reports %s fen, order is %s", order.order_id, amount, order.amount_fen)
            return  # never book a payment whose amount differs; reconciliation reports it
        merchant = self._directory.merchant(order.merchant_id)
        booking = PaymentBooking(order.order_id, order.merchant_id, wallet, channel.name, str(result.trade_no),
                                 amount, result.paid_at or self._clock.now())
        self._booker.book(order, booking, channel, merchant.late_payment_policy if merchant else "refund")

    def _channel(self, merchant_id: str, wallet: Wallet):  # type: ignore[no-untyped-def]
        found = self._channels.for_merchant(merchant_id, wallet.value)
        if found is None:
            raise NotConfigured(f"no {wallet.value} channel configured")
        return found

    def _repeat_answer(self, key: str, digest: str) -> dict | None:
        record = self._dedupe.get(key)
        if record is None:
            return None
        if record.request_hash != digest:
            raise Conflict("this txn was used for a different request")
        return self._with_expiry(dict(record.answer), self._clock.now())

    @staticmethod
    def _with_expiry(answer: dict, now: float) -> dict:
        return answer | {"expires_in": max(0, int(answer["expires_at"] - now))}

    @staticmethod
    def _require_qr(result: ChannelResult) -> str:
        if result.state is ChannelState.SUCCESS and result.qr:
            return result.qr
        if result.state is ChannelState.UNKNOWN:
            raise ChannelUnavailable("payment platform did not answer; try again")
        raise NotConfigured(f"payment platform refused the order: {result.code} {result.message}".strip())

    @staticmethod
    def _description(merchant_name: str) -> str:
        return f"{merchant_name or 'ScanPay'} 消费"


# Close answers that mean "there is nothing open to close any more": closed already, or the trade
# never reached the platform (it cannot be paid there). Orders get here only after their expiry.
CLOSED_ALREADY = frozenset({
    "ORDERCLOSED", "ORDER_CLOSED", "ACQ.TRADE_HAS_CLOSE", "TRADE_HAS_CLOSE",
    "ORDERNOTEXIST", "ORDER_NOT_EXIST", "ACQ.TRADE_NOT_EXIST", "TRADE_NOT_EXIST",
})


def voice_text(wallet: str | None, amount_fen: int) -> str:
    """What the terminal speaks: 微信收款12.50元 / 支付宝收款12.50元."""
    names = {"wechat": "微信", "alipay": "支付宝"}
    return f"{names.get(wallet or '', '')}收款{format_yuan(amount_fen)}元"
