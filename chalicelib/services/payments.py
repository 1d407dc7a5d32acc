"""Booking a payment the platform confirmed: shared by notifications, queries and expiry.

Whatever path learns of a payment first (the notification, the terminal's QUERY, the expiry job's
query), it books it here, and the store's conditions make sure it is booked once.

A late payment (after its order closed, or through the other wallet of a paid order) is refunded
automatically, and that refund follows the merchant refunds' rule: its request is persisted first
(store/refunds.py claim_late, a deterministic out_refund_no), and its LATE_REFUND is booked only when the
platform confirms the money went back. Accepted but not finished: pending, completed by the refund sweep
job (or the expiry job's retry). Refused by the platform (e.g. the merchant's balance is short): pending,
sent again by the next sweep, and after MAX_LATE_REFUSALS handed to a person. Accepted and then failed
(the money could not reach the payer): handed to a person at once (request in the "attention" queue,
order late_refund FAILED). Never dropped, never booked twice.
"""
from __future__ import annotations

import logging

from chalicelib.channels.base import ChannelState, PaymentChannel, RefundRequest
from chalicelib.domain.clock import Clock
from chalicelib.domain.ids import new_refund_id
from chalicelib.domain.orders import Order, OrderStatus, Wallet
from chalicelib.services.refunds import PlatformAnswer, ask_about_refund, ask_to_refund
from chalicelib.store.dedupe import DedupeStore
from chalicelib.store.ledger import LedgerStore
from chalicelib.store.orders import ConditionFailed, OrderStore, PaymentBooking, trade_dedupe_key
from chalicelib.store.refunds import BOOKED, FAILED, RefundRequestRecord, RefundStore

log = logging.getLogger(__name__)

LATE_REFUNDED, LATE_REFUND_PENDING, LATE_REFUND_FAILED = "LATE_REFUNDED", "LATE_REFUND_PENDING", "LATE_REFUND_FAILED"
MAX_LATE_REFUSALS = 12  # refusals (sweeps) before a person is asked: about two hours at one sweep per 10 min
LATE_REFUND_REASON = "payment after the order closed"


def late_refund_no(order_id: str, wallet: Wallet | str, trade_no: str) -> str:
    """Deterministic: one refund per late payment (a platform trade per wallet and order), however
    often it is retried."""
    wallet_value = wallet.value if isinstance(wallet, Wallet) else wallet
    return new_refund_id(order_id, f"L{wallet_value[0].upper()}{trade_no[-2:]}")


class PaymentBooker:
    def __init__(self, orders: OrderStore, dedupe: DedupeStore, clock: Clock, refunds: RefundStore,
                 ledger: LedgerStore) -> None:
        self._orders = orders
        self._dedupe = dedupe
        self._clock = clock
        self._refunds = refunds
        self._ledger = ledger

    def book(self, order: Order, booking: PaymentBooking, channel: PaymentChannel,
             late_policy: str, notify_url: str = "") -> str:
        """Book a confirmed payment once. Returns what happened: PAID, DUPLICATE, LATE_REFUNDED,
        LATE_REFUND_PENDING, LATE_REFUND_FAILED or LATE_ACCEPTED."""
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
        """Refund a late payment in whole; LATE_REFUNDED only once the platform confirmed it (and it is
        booked), LATE_REFUND_PENDING while it has not, LATE_REFUND_FAILED when it waits for a person."""
        refund_no = late_refund_no(order.order_id, wallet, trade_no)
        claimed = self._refunds.claim_late(order.order_id, refund_no, amount_fen, wallet.value, trade_no,
                                           self._clock.now())
        request = self._refunds.request(refund_no)
        if request is None:
            raise ConditionFailed(f"refund request {refund_no} vanished")
        return self.resolve_late(request, channel, notify_url, first=claimed)

    def resolve_late(self, request: RefundRequestRecord, channel: PaymentChannel, notify_url: str = "",
                     first: bool = False) -> str:
        """One step of a late payment's refund: send it (`first`) or ask about it, then book, count a
        refusal, hand it to a person, or leave it pending. Safe to repeat and to run concurrently."""
        if request.state == BOOKED:
            return LATE_REFUNDED
        if request.state == FAILED:
            return LATE_REFUND_FAILED
        refund = RefundRequest(request.order_id, request.out_refund_no, request.refund_fen, request.refund_fen,
                               LATE_REFUND_REASON, notify_url)
        if first:
            answer = ask_to_refund(channel, refund)
        else:
            answer = ask_about_refund(channel, request.order_id, request.out_refund_no,
                                      lambda: ask_to_refund(channel, refund))
        return self._settle_late(request, answer)

    def _settle_late(self, request: RefundRequestRecord, answer: PlatformAnswer) -> str:
        result = answer.result
        try:
            if answer.state is ChannelState.SUCCESS:
                self._book_late(request, result.trade_no or "")
                return LATE_REFUNDED
            refusals = request.refusals + (1 if answer.refused else 0)
            if answer.state is ChannelState.FAIL and (not answer.refused or refusals >= MAX_LATE_REFUSALS):
                self._refunds.flag_late(request, result.code or "FAILED", refusals)
                log.error("late refund %s of order %s failed at the platform (%s %s): needs a person",
                          request.out_refund_no, request.order_id, result.code, result.message)
                return LATE_REFUND_FAILED
            if answer.state is ChannelState.FAIL:
                self._refunds.note_refusal(request, result.code or "REFUSED")
        except ConditionFailed:
            return self._after_race(request.out_refund_no)
        log.warning("late refund %s of order %s: pending (%s %s %s)", request.out_refund_no, request.order_id,
                    result.state.value, result.code, result.message)
        return LATE_REFUND_PENDING

    def _book_late(self, request: RefundRequestRecord, platform_refund_id: str) -> None:
        stored = self._orders.get(request.order_id)
        if stored is None:
            raise ConditionFailed(f"order {request.order_id} is missing")
        others = [late for late in self._ledger.unrefunded_late_payments(request.order_id)
                  if (late.wallet, late.trade_no) != (request.late_wallet, request.late_trade_no)]
        self._refunds.book_late(stored.order.merchant_id, request, platform_refund_id, bool(others),
                                self._clock.now())

    def _after_race(self, refund_no: str) -> str:
        """A concurrent step (a notification retry, the sweep) settled this refund first: report its outcome."""
        current = self._refunds.request(refund_no)
        if current is not None and current.state == BOOKED:
            return LATE_REFUNDED
        if current is not None and current.state == FAILED:
            return LATE_REFUND_FAILED
        return LATE_REFUND_PENDING
