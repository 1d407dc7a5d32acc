"""Applying a platform's payment notification, in DESIGN.md's order:

verify the signature over the raw body (the channel does this before parsing), parse, check the
amount, merchant and our order id against the stored order, apply idempotently, then answer exactly
what the platform expects. A rejected notification changes nothing.
"""
from __future__ import annotations

import logging
from typing import Mapping

from chalicelib.channels.base import HttpReply, NotificationRejected
from chalicelib.domain.orders import Wallet
from chalicelib.services.orders import notify_url
from chalicelib.services.payments import PaymentBooker
from chalicelib.services.ports import WALLET_OF_KIND, Channels
from chalicelib.store.directory import Directory
from chalicelib.store.orders import OrderStore, PaymentBooking

log = logging.getLogger(__name__)


class NotificationService:
    def __init__(self, orders: OrderStore, directory: Directory, channels: Channels, booker: PaymentBooker,
                 public_base_url: str) -> None:
        self._orders = orders
        self._directory = directory
        self._channels = channels
        self._booker = booker
        self._base_url = public_base_url

    def handle(self, kind: str, merchant_id: str, headers: Mapping[str, str], body: bytes) -> HttpReply:
        wallet = WALLET_OF_KIND.get(kind)
        found = self._channels.for_merchant(merchant_id, wallet) if wallet else None
        if found is None or found[1].kind != kind:
            log.warning("notification for unknown channel %s of merchant %s", kind, merchant_id)
            return HttpReply(404, "unknown channel", {"Content-Type": "text/plain"})
        channel, _config = found
        try:
            notice = channel.parse_notification(headers, body)
        except NotificationRejected as rejected:
            log.warning("notification rejected (%s, merchant %s): %s", kind, merchant_id, rejected.reason)
            return channel.nack(rejected.reason)
        if not notice.paid:
            return channel.ack()  # e.g. a trade-created or closed event: nothing to book
        stored = self._orders.get(notice.out_trade_no)
        if stored is None or stored.order.merchant_id != merchant_id:
            log.warning("notification for an order %s not of merchant %s", notice.out_trade_no, merchant_id)
            return channel.nack("unknown order")
        order = stored.order
        if notice.amount_fen != order.amount_fen:
            log.error("notification amount %s differs from order %s amount %s",
                      notice.amount_fen, order.order_id, order.amount_fen)
            return channel.nack("amount does not match the order")
        merchant = self._directory.merchant(merchant_id)
        booking = PaymentBooking(order.order_id, merchant_id, Wallet(wallet), kind, notice.trade_no,
                                 notice.amount_fen, notice.paid_at)
        outcome = self._booker.book(order, booking, channel, merchant.late_payment_policy if merchant else "refund",
                                    notify_url(self._base_url, kind, merchant_id))
        log.info("notification %s for order %s: %s", notice.trade_no, order.order_id, outcome)
        return channel.ack()
