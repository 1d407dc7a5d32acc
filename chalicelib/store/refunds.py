"""Merchant refunds: the request persisted (and its amount held on the order) before the channel hears of
it, then either the booking of a refund the platform confirmed or the release of one it failed.

A refund request's record `refundreq#<out_refund_no>` (permanent) moves through `kind`:

    refund_request (pending) --book--> refund_booked
                             --release--> refund_failed

Each move is one TransactWriteItems conditioned on the record still being pending, so a refund is booked
or released once, never both. The amount of a pending refund is held in the order's refund_pending_fen
so that pending and new refunds together never exceed the payment:

    claim    put request record (attribute_not_exists)
             update order refund_pending_fen += refund (condition: status refundable, refunded_fen and
             refund_pending_fen as read)
    book     update order PAID|PARTIALLY_REFUNDED -> PARTIALLY_REFUNDED|REFUNDED, refunded_fen += refund,
             refund_pending_fen -= refund (condition: status, refunded_fen and refund_pending_fen as read)
             put ledger order#<id> / refund#<out_refund_no>, negative, kind REFUND (attribute_not_exists)
             put dedupe refund#<out_refund_no>, permanent (attribute_not_exists)
             update request record -> refund_booked (condition: refund_request)
             add totals the refund day's settlement totals item (store/settlement_totals.py), ADD only
    release  update order refund_pending_fen -= refund (condition: as read)
             update request record -> refund_failed (condition: refund_request)

The conditions on the order's sums make two refunds of one order that race each other book one after the
other (the loser re-reads and retries on the new sums), never overwrite each other's totals.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chalicelib.config import Settings
from chalicelib.domain.orders import PAID_STATUSES, Order, Transition
from chalicelib.store.dedupe import DedupeStore
from chalicelib.store.models import DedupeModel, LedgerEntryModel, OrderModel
from chalicelib.store.orders import StoredOrder, ledger_entry
from chalicelib.store.settlement import conditional_transaction
from chalicelib.store.settlement_totals import TermsLookup, add_totals, entry_view, no_terms

REQUEST_PREFIX = "refundreq#"
BOOKED_PREFIX = "refund#"
PENDING, BOOKED, FAILED = "refund_request", "refund_booked", "refund_failed"


@dataclass(frozen=True)
class RefundRequestRecord:
    out_refund_no: str
    order_id: str
    refund_fen: int
    state: str  # PENDING, BOOKED or FAILED
    code: str = ""  # why the platform failed it


@dataclass(frozen=True)
class RefundBooking:
    stored: StoredOrder  # as read just before: its status and sums are the transaction's conditions
    transition: Transition
    out_refund_no: str
    refund_fen: int
    platform_refund_id: str

    @property
    def order(self) -> Order:
        return self.stored.order


def _sums_as_read(stored: StoredOrder) -> Condition:
    order = stored.order
    pending = OrderModel.refund_pending_fen == stored.refund_pending_fen
    if stored.refund_pending_fen == 0:
        pending = pending | OrderModel.refund_pending_fen.does_not_exist()
    return (OrderModel.refunded_fen == order.refunded_fen) & pending


class RefundStore:
    def __init__(self, settings: Settings, dedupe: DedupeStore, terms_of: TermsLookup = no_terms) -> None:
        self._settings = settings
        self._dedupe = dedupe
        self._terms_of = terms_of  # prices the refund's (negative) fee into the day's totals

    def request(self, out_refund_no: str) -> RefundRequestRecord | None:
        try:
            item = DedupeModel.get(REQUEST_PREFIX + out_refund_no, consistent_read=True)
        except DoesNotExist:
            return None
        state = item.kind if item.kind in (BOOKED, FAILED) else PENDING
        if state == PENDING and self.is_booked(out_refund_no):
            state = BOOKED  # booked before requests recorded their state
        return RefundRequestRecord(out_refund_no, item.ref or "", int(item.request_hash or 0), state,
                                   str((item.answer or {}).get("code", "")))

    def is_booked(self, out_refund_no: str) -> bool:
        return self._dedupe.get(BOOKED_PREFIX + out_refund_no) is not None

    def claim(self, stored: StoredOrder, out_refund_no: str, refund_fen: int, now: float) -> None:
        """Persist the request and hold its amount on the order, before the platform is asked.
        Raises ConditionFailed when the order moved since it was read or the number was taken."""
        order = stored.order
        record = DedupeModel(REQUEST_PREFIX + out_refund_no, kind=PENDING, ref=order.order_id,
                             request_hash=str(refund_fen), created_at=now)
        with conditional_transaction(self._settings) as tx:
            tx.save(record, condition=DedupeModel.dedupe_key.does_not_exist())
            tx.update(OrderModel(order.order_id),
                      actions=[OrderModel.refund_pending_fen.set(stored.refund_pending_fen + refund_fen)],
                      condition=OrderModel.status.is_in(*[s.value for s in PAID_STATUSES]) & _sums_as_read(stored))

    def book(self, booking: RefundBooking, now: float) -> None:
        """Raises ConditionFailed when the order moved since it was read, or the refund was booked or released."""
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
                     & _sums_as_read(booking.stored))
        with conditional_transaction(self._settings) as tx:
            tx.update(OrderModel(order.order_id), actions=[
                OrderModel.status.set(booking.transition.to_state.value),
                OrderModel.refunded_fen.set(order.refunded_fen + booking.refund_fen),
                OrderModel.refund_pending_fen.set(max(0, booking.stored.refund_pending_fen - booking.refund_fen)),
            ], condition=condition)
            tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
            tx.save(dedupe, condition=DedupeModel.dedupe_key.does_not_exist())
            tx.update(DedupeModel(REQUEST_PREFIX + booking.out_refund_no),
                      actions=[DedupeModel.kind.set(BOOKED)], condition=DedupeModel.kind == PENDING)
            add_totals(tx, order.merchant_id, entry.business_date, order.order_id, [entry_view(entry)],
                       self._terms_of(order.merchant_id))

    def release(self, stored: StoredOrder, out_refund_no: str, refund_fen: int, code: str, now: float) -> None:
        """The platform failed the refund: give its held amount back to the order. Raises
        ConditionFailed when the order moved since it was read, or the refund was booked or released."""
        with conditional_transaction(self._settings) as tx:
            tx.update(OrderModel(stored.order.order_id),
                      actions=[OrderModel.refund_pending_fen.set(max(0, stored.refund_pending_fen - refund_fen))],
                      condition=_sums_as_read(stored))
            tx.update(DedupeModel(REQUEST_PREFIX + out_refund_no), actions=[
                DedupeModel.kind.set(FAILED), DedupeModel.answer.set({"code": code[:64]}),
            ], condition=DedupeModel.kind == PENDING)
