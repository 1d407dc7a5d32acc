"""Merchant refunds: the request persisted before the channel hears of it, then the booking of a refund
the channel confirmed, in one TransactWriteItems:

    update order   PAID|PARTIALLY_REFUNDED -> PARTIALLY_REFUNDED|REFUNDED, refunded_fen += refund
                   (condition: status in the transition's from_states AND refunded_fen = what we read)
    put ledger     order#<id> / refund#<out_refund_no>, negative, kind REFUND   (attribute_not_exists)
    put dedupe     refund#<out_refund_no>, permanent                            (attribute_not_exists)

The condition on refunded_fen makes two refunds of one order that race each other book one after the
other (the loser re-reads and books on the new total), never overwrite each other's total.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import PutError

from chalicelib.config import Settings
from chalicelib.domain.errors import Conflict
from chalicelib.domain.orders import Order, Transition
from chalicelib.store.dedupe import DedupeStore
from chalicelib.store.models import DedupeModel, LedgerEntryModel, OrderModel
from chalicelib.store.orders import ledger_entry
from chalicelib.store.settlement import conditional_transaction

REQUEST_PREFIX = "refundreq#"
BOOKED_PREFIX = "refund#"


@dataclass(frozen=True)
class RefundBooking:
    order: Order  # as read just before: its status and refunded_fen are the transaction's conditions
    transition: Transition
    out_refund_no: str
    refund_fen: int
    platform_refund_id: str


class RefundStore:
    def __init__(self, settings: Settings, dedupe: DedupeStore) -> None:
        self._settings = settings
        self._dedupe = dedupe

    def is_booked(self, out_refund_no: str) -> bool:
        return self._dedupe.get(BOOKED_PREFIX + out_refund_no) is not None

    def claim_request(self, out_refund_no: str, order_id: str, refund_fen: int, now: float) -> None:
        """Persist the request before sending it. The same out_refund_no with another amount is a
        Conflict: the platform would refund the first amount, never this one."""
        record = DedupeModel(REQUEST_PREFIX + out_refund_no, kind="refund_request", ref=order_id,
                             request_hash=str(refund_fen), created_at=now)
        try:
            record.save(condition=DedupeModel.dedupe_key.does_not_exist())
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            existing = self._dedupe.get(REQUEST_PREFIX + out_refund_no)
            if existing is None or existing.request_hash != str(refund_fen) or existing.ref != order_id:
                raise Conflict("this refund number was used for another refund") from error

    def book(self, booking: RefundBooking, now: float) -> None:
        """Raises ConditionFailed when the order moved since it was read, or the refund was booked."""
        order = booking.order
        entry = ledger_entry(
            f"order#{order.order_id}", BOOKED_PREFIX + booking.out_refund_no, order.merchant_id, now,
            amount_fen=-booking.refund_fen, kind="REFUND", order_id=order.order_id,
            wallet=order.wallet.value if order.wallet else None, channel=order.channel,
            channel_trade_no=booking.platform_refund_id, created_at=now,
        )
        dedupe = DedupeModel(BOOKED_PREFIX + booking.out_refund_no, kind="refund", ref=order.order_id,
                             created_at=now)
        condition = (OrderModel.status.is_in(*[s.value for s in booking.transition.from_states])
                     & (OrderModel.refunded_fen == order.refunded_fen))
        with conditional_transaction(self._settings) as tx:
            tx.update(OrderModel(order.order_id), actions=[
                OrderModel.status.set(booking.transition.to_state.value),
                OrderModel.refunded_fen.set(order.refunded_fen + booking.refund_fen),
            ], condition=condition)
            tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
            tx.save(dedupe, condition=DedupeModel.dedupe_key.does_not_exist())
