"""A merchant refunds a paid QR or payment-code order, in part or in whole.

The caller numbers its refunds of an order (request_no 1, 2, ...). The out_refund_no sent to the
platform is derived from (order, request_no), and the request is persisted before the call, with its
amount held on the order, so a retry after an UNKNOWN answer asks the platform for the same refund again
and the platform refunds once, and refunds still pending and new ones never exceed the payment.

A refund is booked (ledger entry, order refunded_fen) only once the platform says the money went back:
WeChat accepts a refund and finishes it later (v2 always, v3 answers PROCESSING), so an accepted refund
is asked about (query_refund) and stays PENDING until the platform confirms it; the caller asks again
(`status`, or the same request) to complete it. A refund the platform refuses or fails releases the held
amount and answers FAILED; that request number stays FAILED (a new attempt takes a new number). The
entry is booked on the day of the booking: a refund of a previous day's payment lowers that day's
settlement.

Refunds are allowed whatever the state of the merchant's licence (only new QR orders stop).

Refunds nobody asks about again are completed by the sweep job (services/refund_sweep.py), which calls
`resolve` for each open request; the automatic refunds of late payments (services/payments.py) ask the
platform through the same two helpers, `ask_to_refund` and `ask_about_refund`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from chalicelib.channels.base import ChannelResult, ChannelState, PaymentChannel, RefundRequest, TradeStatus
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import Conflict, InvalidAmount, InvalidRequest, NotConfigured, NotFound
from chalicelib.domain.ids import new_refund_id
from chalicelib.domain.orders import check_amount, refund_transition
from chalicelib.services.ports import Channels
from chalicelib.store.orders import ConditionFailed, OrderStore, StoredOrder
from chalicelib.store.refunds import BOOKED, FAILED, PENDING, RefundBooking, RefundRequestRecord, RefundStore

log = logging.getLogger(__name__)

MAX_REQUEST_NO = 999


@dataclass(frozen=True)
class PlatformAnswer:
    """A refund's outcome at the platform, and whether it came from the refund call itself (a FAIL there
    is a refusal: nothing moved, the request may be sent again) or from the refund query (a FAIL there:
    accepted, then failed for good)."""

    result: ChannelResult
    refused: bool = False

    @property
    def state(self) -> ChannelState:
        return self.result.state


def ask_to_refund(channel: PaymentChannel, request: RefundRequest) -> PlatformAnswer:
    """Send a refund (persisted before: the platform refunds an out_refund_no once) and, when the platform
    only accepted it (WeChat; Alipay with fund_change N), ask at once whether it is done."""
    result = channel.refund(request)
    if result.state is ChannelState.FAIL:
        return PlatformAnswer(result, refused=True)
    if result.state is ChannelState.SUCCESS and result.trade_status is not TradeStatus.REFUNDED:
        result = channel.query_refund(request.out_trade_no, request.out_refund_no)  # accepted: done yet?
        if result.state is ChannelState.FAIL and result.trade_status is TradeStatus.NOT_FOUND:
            result = ChannelResult(ChannelState.UNKNOWN, code="NOT_YET_LISTED")  # it was just accepted
    return PlatformAnswer(result)


def ask_about_refund(channel: PaymentChannel, out_trade_no: str, out_refund_no: str,
                     send_again: Callable[[], PlatformAnswer]) -> PlatformAnswer:
    """A refund sent before: its outcome. One the platform does not know (the first call was lost, or
    Alipay failed it, whose rule is to send it again under the same number) is sent again."""
    result = channel.query_refund(out_trade_no, out_refund_no)
    if result.state is ChannelState.FAIL and result.trade_status is TradeStatus.NOT_FOUND:
        return send_again()
    return PlatformAnswer(result)


def out_refund_no(order_id: str, request_no: int) -> str:
    """'R' + the order id's 25 characters + 'M' + 3 digits: 30 characters, within WeChat's and Alipay's 64."""
    if isinstance(request_no, bool) or not isinstance(request_no, int) or not 1 <= request_no <= MAX_REQUEST_NO:
        raise InvalidRequest(f"request_no is a whole number from 1 to {MAX_REQUEST_NO}")
    return new_refund_id(order_id, f"M{request_no:03d}")


class RefundService:
    def __init__(self, orders: OrderStore, refunds: RefundStore, channels: Channels, clock: Clock,
                 max_attempts: int = 5) -> None:
        self._orders = orders
        self._refunds = refunds
        self._channels = channels
        self._clock = clock
        self._max_attempts = max_attempts

    def refund(self, merchant_id: str, order_id: str, refund_fen: int, request_no: int, reason: str = "") -> dict:
        """Answers {"status": REFUNDED | PENDING | FAILED, "out_refund_no", ...}. PENDING: the platform
        has not confirmed yet; call again with the same request_no, or ask `status`."""
        refund_no = out_refund_no(order_id, request_no)
        check_amount(refund_fen)
        stored = self._stored(merchant_id, order_id)
        answer = {"order_id": order_id, "out_refund_no": refund_no, "refund_fen": refund_fen}
        existing = self._refunds.request(refund_no)
        if existing is None:
            existing = self._claim(stored, refund_no, refund_fen)  # InvalidAmount before anything is written
            if existing is None:  # claimed now: the platform hears of it for the first time
                return answer | self._send(stored, refund_no, refund_fen, reason)
        if existing.refund_fen != refund_fen or existing.order_id != order_id:
            raise Conflict("this refund number was used for another refund")
        return answer | self._resolve(existing, reason)

    def status(self, merchant_id: str, order_id: str, request_no: int) -> dict:
        """Where a refund stands; a pending one is asked about at the platform (and booked or released)."""
        refund_no = out_refund_no(order_id, request_no)
        self._stored(merchant_id, order_id)
        existing = self._refunds.request(refund_no)
        if existing is None:
            raise NotFound("no such refund")
        answer = {"order_id": order_id, "out_refund_no": refund_no, "refund_fen": existing.refund_fen}
        return answer | self._resolve(existing, "")

    # --- steps ------------------------------------------------------------------------------

    def _claim(self, stored: StoredOrder, refund_no: str, refund_fen: int) -> RefundRequestRecord | None:
        """Persist the request and hold its amount; None when this call claimed it, the existing
        request when a concurrent retry of the same number claimed it first."""
        for _ in range(self._max_attempts):
            if refund_fen > stored.order.refundable_fen - stored.refund_pending_fen:
                raise InvalidAmount("refund exceeds what is left of the payment (refunds pending included)")
            refund_transition(stored.order, refund_fen)  # IllegalTransition for an order never paid
            try:
                self._refunds.claim(stored, refund_no, refund_fen, self._clock.now())
                return None
            except ConditionFailed:
                existing = self._refunds.request(refund_no)
                if existing is not None:
                    return existing
                stored = self._stored(stored.order.merchant_id, stored.order.order_id)  # the order moved
        raise Conflict("the order kept changing while its refund was recorded; retry the same request_no")

    def resolve(self, existing: RefundRequestRecord) -> dict:
        """The sweep job's step for one open merchant refund: ask the platform, then book, release or
        leave it pending. Answers as `status`."""
        answer = {"order_id": existing.order_id, "out_refund_no": existing.out_refund_no,
                  "refund_fen": existing.refund_fen}
        return answer | self._resolve(existing, "")

    def _request(self, stored: StoredOrder, refund_no: str, refund_fen: int, reason: str) -> RefundRequest:
        order = stored.order
        return RefundRequest(order.order_id, refund_no, order.amount_fen, refund_fen, reason or "merchant refund")

    def _send(self, stored: StoredOrder, refund_no: str, refund_fen: int, reason: str) -> dict:
        answer = ask_to_refund(self._channel(stored), self._request(stored, refund_no, refund_fen, reason))
        return self._settle(stored.order.order_id, refund_no, refund_fen, answer.result)

    def _resolve(self, existing: RefundRequestRecord, reason: str) -> dict:
        if existing.state == BOOKED:
            return {"status": "REFUNDED"}
        if existing.state == FAILED:
            return {"status": "FAILED", "code": existing.code}
        stored = self._stored_by_id(existing.order_id)
        channel = self._channel(stored)
        # The platform never got it (the first call was lost): sent again, same number, refunds once.
        answer = ask_about_refund(channel, existing.order_id, existing.out_refund_no, lambda: ask_to_refund(
            channel, self._request(stored, existing.out_refund_no, existing.refund_fen, reason)))
        return self._settle(existing.order_id, existing.out_refund_no, existing.refund_fen, answer.result)

    def _settle(self, order_id: str, refund_no: str, refund_fen: int, result: ChannelResult) -> dict:
        """Book a refund the platform completed, release one it failed, or leave it pending."""
        if result.state is ChannelState.SUCCESS:
            self._book(order_id, refund_no, refund_fen, result.trade_no or "")
            return {"status": "REFUNDED"}
        if result.state is ChannelState.FAIL:
            if self._release(order_id, refund_no, refund_fen, result.code or "FAILED"):
                return {"status": "FAILED", "code": result.code, "message": result.message}
            return {"status": "REFUNDED"}  # a concurrent call booked it first
        log.warning("refund %s of order %s: pending (%s %s)", refund_no, order_id, result.code, result.message)
        return {"status": "PENDING"}

    def _book(self, order_id: str, refund_no: str, refund_fen: int, platform_refund_id: str) -> None:
        """The platform refunded: book it, on the order as it is now (another refund may have been
        booked since we read it)."""
        for _ in range(self._max_attempts):
            stored = self._stored_by_id(order_id)
            booking = RefundBooking(stored, refund_transition(stored.order, refund_fen), refund_no, refund_fen,
                                    platform_refund_id)
            try:
                self._refunds.book(booking, self._clock.now())
                return
            except ConditionFailed:
                if self._refunds.is_booked(refund_no):
                    return  # a concurrent retry of this same refund booked it
        raise Conflict("the order kept changing while its refund was booked; retry the same request_no")

    def _release(self, order_id: str, refund_no: str, refund_fen: int, code: str) -> bool:
        """The platform failed the refund: give the held amount back. False when it was booked meanwhile."""
        for _ in range(self._max_attempts):
            current = self._refunds.request(refund_no)
            if current is None or current.state != PENDING:
                return current is not None and current.state == FAILED
            try:
                self._refunds.release(self._stored_by_id(order_id), refund_no, refund_fen, code, self._clock.now())
                log.warning("refund %s of order %s failed at the platform (%s): released", refund_no, order_id, code)
                return True
            except ConditionFailed:
                continue  # the order moved, or a concurrent call settled the refund: look again
        raise Conflict("the order kept changing while its failed refund was released; ask again")

    # --- reads ------------------------------------------------------------------------------

    def _stored(self, merchant_id: str, order_id: str) -> StoredOrder:
        stored = self._orders.get(order_id)
        if stored is None or stored.order.merchant_id != merchant_id:
            raise NotFound("no such order")
        return stored

    def _stored_by_id(self, order_id: str) -> StoredOrder:
        stored = self._orders.get(order_id)
        if stored is None:
            raise NotFound("no such order")
        return stored

    def _channel(self, stored: StoredOrder) -> PaymentChannel:
        order = stored.order
        found = self._channels.for_merchant(order.merchant_id, order.wallet.value) if order.wallet else None
        if found is None:
            raise NotConfigured("the order's payment channel is not configured")
        return found[0]
