"""A merchant refunds a paid QR or payment-code order, in part or in whole.

The caller numbers its refunds of an order (request_no 1, 2, ...). The out_refund_no sent to the
platform is derived from (order, request_no), and the request is persisted before the call, so a retry
after an UNKNOWN answer asks the platform for the same refund again and the platform refunds once. The
ledger entry is booked only when the channel says SUCCESS, on the day of the refund: a refund of a
previous day's payment lowers the refund day's settlement.

Refunds are allowed whatever the state of the merchant's licence (only new QR orders stop).
"""
from __future__ import annotations

import logging

from chalicelib.channels.base import ChannelState, RefundRequest
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import Conflict, InvalidRequest, NotConfigured, NotFound
from chalicelib.domain.ids import new_refund_id
from chalicelib.domain.orders import Order, check_amount, refund_transition
from chalicelib.services.ports import Channels
from chalicelib.store.orders import ConditionFailed, OrderStore
from chalicelib.store.refunds import RefundBooking, RefundStore

log = logging.getLogger(__name__)

MAX_REQUEST_NO = 999


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
        did not answer; call again with the same request_no."""
        refund_no = out_refund_no(order_id, request_no)
        check_amount(refund_fen)
        order = self._order(merchant_id, order_id)
        answer = {"order_id": order_id, "out_refund_no": refund_no, "refund_fen": refund_fen}
        if self._refunds.is_booked(refund_no):
            self._refunds.claim_request(refund_no, order_id, refund_fen, self._clock.now())  # Conflict if changed
            return answer | {"status": "REFUNDED"}
        refund_transition(order, refund_fen)  # InvalidAmount / IllegalTransition before anything is written
        self._refunds.claim_request(refund_no, order_id, refund_fen, self._clock.now())
        found = self._channels.for_merchant(order.merchant_id, order.wallet.value) if order.wallet else None
        if found is None:
            raise NotConfigured("the order's payment channel is not configured")
        result = found[0].refund(RefundRequest(order_id, refund_no, order.amount_fen, refund_fen,
                                               reason or "merchant refund"))
        if result.state is ChannelState.UNKNOWN:
            log.warning("refund %s of order %s: no definite answer", refund_no, order_id)
            return answer | {"status": "PENDING"}
        if result.state is ChannelState.FAIL:
            return answer | {"status": "FAILED", "code": result.code, "message": result.message}
        self._book(order, refund_no, refund_fen, result.trade_no or "")
        return answer | {"status": "REFUNDED"}

    def _order(self, merchant_id: str, order_id: str) -> Order:
        stored = self._orders.get(order_id)
        if stored is None or stored.order.merchant_id != merchant_id:
            raise NotFound("no such order")
        return stored.order

    def _book(self, order: Order, refund_no: str, refund_fen: int, platform_refund_id: str) -> None:
        """The platform refunded: book it, on the order as it is now (another refund may have been
        booked since we read it)."""
        for _ in range(self._max_attempts):
            booking = RefundBooking(order, refund_transition(order, refund_fen), refund_no, refund_fen,
                                    platform_refund_id)
            try:
                self._refunds.book(booking, self._clock.now())
                return
            except ConditionFailed:
                if self._refunds.is_booked(refund_no):
                    return  # a concurrent retry of this same refund booked it
                order = self._order(order.merchant_id, order.order_id)
        raise Conflict("the order kept changing while its refund was booked; retry the same request_no")
