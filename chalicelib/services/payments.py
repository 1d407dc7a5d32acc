"""Booking a payment the platform confirmed: shared by notifications, queries and expiry.

Whatever path learns of a payment first (the notification, the terminal's QUERY, the expiry job's
query), it books it here, and the store's conditions make sure it is booked once.
"""
from __future__ import annotations

import logging

from chalicelib.channels.base import ChannelState, PaymentChannel, RefundRequest
from chalicelib.domain.clock import Clock
from chalicelib.domain.ids import new_refund_id
from chalicelib.domain.orders import Order, OrderStatus, Wallet
from chalicelib.store.dedupe import DedupeStore
from chalicelib.store.orders import ConditionFailed, OrderStore, PaymentBooking, trade_dedupe_key

log = logging.getLogger(__name__)


class PaymentBooker:
    def __init__(self, orders: OrderStore, dedupe: DedupeStore, clock: Clock) -> None:
        self._orders = orders
        self._dedupe = dedupe
        self._clock = clock

    def book(self, order: Order, booking: PaymentBooking, channel: PaymentChannel,
             late_policy: str, notify_url: str = "") -> str:
        """Book a confirmed payment once. Returns what happened: PAID, DUPLICATE, LATE_REFUNDED,
        LATE_REFUND_PENDING or LATE_ACCEPTED."""
        now = self._clock.now()
        if order.status is OrderStatus.CREATED:
            try:
                self._orders.book_payment(booking, now)
                return "PAID"
            except ConditionFailed:
                stored = self._orders.get(order.order_id)  # lost a race: see who won
                if stored is None:
                    raise
                order = stored.order
        if order.channel_trade_no == booking.trade_no and order.wallet is booking.wallet:
            return "DUPLICATE"
        if self._dedupe.get(trade_dedupe_key(booking.wallet, booking.trade_no)) is not None:
            return "DUPLICATE"  # this late payment was booked before
        accept = late_policy == "accept" and order.status is OrderStatus.CLOSED
        try:
            self._orders.book_late_payment(booking, accept=accept, now=now)
        except ConditionFailed:
            return "DUPLICATE"
        if accept:
            return "LATE_ACCEPTED"
        log.warning("late payment %s on order %s: refunding", booking.trade_no, order.order_id)
        return self.refund_late(order, booking.wallet, booking.trade_no, booking.amount_fen, channel, notify_url)

    def refund_late(self, order: Order, wallet: Wallet, trade_no: str, amount_fen: int,
                    channel: PaymentChannel, notify_url: str = "") -> str:
        """Refund a late payment in whole. The refund id is deterministic, so a retry after an UNKNOWN
        answer cannot refund twice; the ledger entry is booked only on SUCCESS."""
        refund_no = new_refund_id(order.order_id, f"L{wallet.value[0].upper()}{trade_no[-2:]}")
        result = channel.refund(RefundRequest(order.order_id, refund_no, amount_fen, amount_fen,
                                              "payment after the order closed", notify_url))
        if result.state is not ChannelState.SUCCESS:
            log.warning("late refund %s for order %s: %s %s", refund_no, order.order_id, result.state, result.code)
            return "LATE_REFUND_PENDING"
        try:
            self._orders.book_late_refund(order, wallet.value, trade_no, amount_fen, refund_no,
                                          self._clock.now(), still_pending=False)
        except ConditionFailed:
            pass  # booked by an earlier retry
        return "LATE_REFUNDED"
