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

The automatic refund of a late payment (services/payments.py) uses the same request record, with the late
payment's wallet and trade in `answer`, and no hold (a late payment was never part of the order's amount):

    claim_late  put request record (attribute_not_exists)
    book_late   put ledger order#<id> / lateref#<wallet>#<trade>, negative, kind LATE_REFUND
                (attribute_not_exists), update the order's late_refund flag (cleared, or kept PENDING while
                another late payment of the order waits), update request record -> refund_booked
                (condition: refund_request), add totals
    flag_late   the platform failed it: request record -> refund_failed and queue "attention", order
                late_refund -> FAILED (a person refunds it by hand; nothing is booked)

While a request is open its record carries `refund_queue` (sparse index `refunds_open`): "pending#<shard>"
until it is booked, released or flagged (each of those removes or moves it in its own transaction), so the
sweep job finds the open requests without a Scan.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.config import Settings
from chalicelib.domain.orders import PAID_STATUSES, Order, Transition
from chalicelib.domain.settlement import section_of
from chalicelib.store.dedupe import DedupeStore, put_new
from chalicelib.store.models import DedupeModel, LedgerEntryModel, OrderModel
from chalicelib.store.orders import LATE_REFUND_PENDING, ConditionFailed, StoredOrder, ledger_entry
from chalicelib.store.settlement import conditional_transaction
from chalicelib.store.settlement_totals import TermsLookup, add_totals, entry_view, no_terms

REQUEST_PREFIX = "refundreq#"
BOOKED_PREFIX = "refund#"
PENDING, BOOKED, FAILED = "refund_request", "refund_booked", "refund_failed"
QUEUE_SHARDS = 4  # spreads the open requests over 4 index partitions
ATTENTION = "attention"  # late refunds the platform failed: a person takes over
LATE_REFUND_FAILED = "FAILED"  # the order's late_refund flag once its refund waits for a person


def pending_queue(out_refund_no: str) -> str:
    shard = int(hashlib.sha1(out_refund_no.encode()).hexdigest(), 16) % QUEUE_SHARDS
    return f"pending#{shard}"


@dataclass(frozen=True)
class RefundRequestRecord:
    out_refund_no: str
    order_id: str
    refund_fen: int
    state: str  # PENDING, BOOKED or FAILED
    code: str = ""  # why the platform failed (or last refused) it
    created_at: float = 0.0
    late_wallet: str = ""  # a late payment's automatic refund: the wallet and trade it gives back
    late_trade_no: str = ""
    refusals: int = 0  # late refunds: how often the platform refused to take the request
    queue: str = ""  # refund_queue: "pending#<n>", "attention" or "" (closed)

    @property
    def is_late(self) -> bool:
        return bool(self.late_wallet)

    def late_fields(self) -> dict:
        return {"late_wallet": self.late_wallet, "late_trade_no": self.late_trade_no} if self.is_late else {}


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
        answer = item.answer or {}
        if state == PENDING and not answer.get("late_wallet") and self.is_booked(out_refund_no):
            state = BOOKED  # booked before requests recorded their state
        return RefundRequestRecord(out_refund_no, item.ref or "", int(item.request_hash or 0), state,
                                   str(answer.get("code", "")), float(item.created_at or 0),
                                   str(answer.get("late_wallet", "")), str(answer.get("late_trade_no", "")),
                                   int(answer.get("refusals", 0) or 0), item.refund_queue or "")

    def open_requests(self, queue: str = "pending") -> Iterator[str]:
        """The out_refund_nos of open requests, oldest first per shard: "pending" (the platform has not
        confirmed them) or ATTENTION (failed late refunds waiting for a person). Index queries, paged."""
        queues = [f"pending#{n}" for n in range(QUEUE_SHARDS)] if queue == "pending" else [ATTENTION]
        for name in queues:
            for item in DedupeModel.refunds_open.query(name):
                yield item.dedupe_key[len(REQUEST_PREFIX):]

    def is_booked(self, out_refund_no: str) -> bool:
        return self._dedupe.get(BOOKED_PREFIX + out_refund_no) is not None

    def claim(self, stored: StoredOrder, out_refund_no: str, refund_fen: int, now: float) -> None:
        """Persist the request and hold its amount on the order, before the platform is asked.
        Raises ConditionFailed when the order moved since it was read or the number was taken."""
        order = stored.order
        record = DedupeModel(REQUEST_PREFIX + out_refund_no, kind=PENDING, ref=order.order_id,
                             request_hash=str(refund_fen), created_at=now, refund_queue=pending_queue(out_refund_no))
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
                      actions=[DedupeModel.kind.set(BOOKED), DedupeModel.refund_queue.remove()],
                      condition=DedupeModel.kind == PENDING)
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
                DedupeModel.refund_queue.remove(),
            ], condition=DedupeModel.kind == PENDING)

    # --- late payments' automatic refunds ------------------------------------------------------

    def claim_late(self, order_id: str, out_refund_no: str, refund_fen: int, wallet: str, trade_no: str,
                   now: float) -> bool:
        """Persist a late payment's refund request before the platform hears of it. False when it
        exists already (an earlier attempt, or a concurrent one, claimed it)."""
        record = DedupeModel(REQUEST_PREFIX + out_refund_no, kind=PENDING, ref=order_id, request_hash=str(refund_fen),
                             answer={"late_wallet": wallet, "late_trade_no": trade_no}, created_at=now,
                             refund_queue=pending_queue(out_refund_no))
        return put_new(record)

    def book_late(self, merchant_id: str, request: RefundRequestRecord, platform_refund_id: str,
                  others_pending: bool, now: float) -> None:
        """The platform gave the late payment back: book the LATE_REFUND once. `others_pending`: another
        late payment of the order still waits for its refund (the order keeps its flag). Raises
        ConditionFailed when the request was booked or flagged meanwhile."""
        order_id = request.order_id
        entry = ledger_entry(
            f"order#{order_id}", f"lateref#{request.late_wallet}#{request.late_trade_no}", merchant_id, now,
            amount_fen=-request.refund_fen, kind="LATE_REFUND", order_id=order_id, wallet=request.late_wallet,
            channel_trade_no=request.out_refund_no, created_at=now,
        )
        flag = OrderModel.late_refund.set(LATE_REFUND_PENDING) if others_pending else OrderModel.late_refund.remove()
        view = entry_view(entry)
        terms = self._terms_of(merchant_id) if section_of(view) == "settled" else None  # late money is reported
        with conditional_transaction(self._settings) as tx:
            tx.update(OrderModel(order_id), actions=[flag], condition=OrderModel.order_id.exists())
            tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
            tx.update(DedupeModel(REQUEST_PREFIX + request.out_refund_no),
                      actions=[DedupeModel.kind.set(BOOKED), DedupeModel.refund_queue.remove()],
                      condition=DedupeModel.kind == PENDING)
            add_totals(tx, merchant_id, entry.business_date, order_id, [view], terms)

    def flag_late(self, request: RefundRequestRecord, code: str, refusals: int) -> None:
        """The platform failed the late refund (accepted it and then the money could not go back, or
        kept refusing it): the request waits for a person (queue ATTENTION), the order shows FAILED.
        Nothing is booked. Raises ConditionFailed when the request was booked or flagged meanwhile."""
        answer = request.late_fields() | {"code": code[:64], "refusals": refusals}
        with conditional_transaction(self._settings) as tx:
            tx.update(DedupeModel(REQUEST_PREFIX + request.out_refund_no), actions=[
                DedupeModel.kind.set(FAILED), DedupeModel.answer.set(answer), DedupeModel.refund_queue.set(ATTENTION),
            ], condition=DedupeModel.kind == PENDING)
            tx.update(OrderModel(request.order_id), actions=[OrderModel.late_refund.set(LATE_REFUND_FAILED)],
                      condition=OrderModel.order_id.exists())

    def note_refusal(self, request: RefundRequestRecord, code: str) -> None:
        """The platform refused to take a late refund (e.g. the merchant's balance is short): count it;
        the request stays pending and is asked again by the next sweep."""
        answer = request.late_fields() | {"code": code[:64], "refusals": request.refusals + 1}
        try:
            DedupeModel(REQUEST_PREFIX + request.out_refund_no).update(
                actions=[DedupeModel.answer.set(answer)], condition=DedupeModel.kind == PENDING)
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise ConditionFailed(str(error)) from error
            raise
