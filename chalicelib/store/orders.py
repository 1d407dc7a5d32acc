"""Orders, their money transactions and the edge event feed.

Every state change is a conditional write on the order's current status (the transition's
from_states), and every money change writes its ledger entry and its dedupe record in the same
TransactWriteItems, so a retried or concurrent request can neither double nor lose a payment. The same
transaction ADDs the entry to its merchant-day's settlement totals (store/settlement_totals.py), so the
totals are exactly the sum of the booked entries.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Iterator

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.domain.clock import business_date
from chalicelib.domain.orders import ACCEPT_LATE, CLOSE, MARK_PAID, Order, OrderKind, OrderStatus, Transition, Wallet
from chalicelib.domain.settlement import section_of
from chalicelib.store.conditional import update_if
from chalicelib.store.connection import transaction_connection
from chalicelib.store.models import DedupeModel, LedgerEntryModel, OrderModel
from chalicelib.store.settlement_totals import TermsLookup, add_totals, entry_view, no_terms

LATE_REFUND_PENDING = "PENDING"
EXPIRY_SHARDS = 8  # spreads one hour's open orders over 8 index partitions (no hot key)


class ConditionFailed(Exception):
    """A conditional write lost: the item was not in the state the transition requires."""


def expiry_bucket(order_id: str, expires_at: float) -> str:
    hour = time.strftime("%Y%m%d%H", time.gmtime(expires_at))
    shard = int(hashlib.sha1(order_id.encode()).hexdigest(), 16) % EXPIRY_SHARDS
    return f"{hour}#{shard}"


def event_key(at: float, order_id: str) -> str:
    return f"{int(at * 1000):015d}#{order_id}"


def to_model(order: Order) -> OrderModel:
    return OrderModel(
        order.order_id,
        merchant_id=order.merchant_id,
        terminal_id=order.terminal_id,
        agent_id=order.agent_id,
        txn=order.txn,
        amount_fen=order.amount_fen,
        kind=order.kind.value,
        status=order.status.value,
        created_at=order.created_at,
        expires_at=order.expires_at,
        wallet=order.wallet.value if order.wallet else None,
        channel=order.channel,
        channel_trade_no=order.channel_trade_no,
        paid_at=order.paid_at,
        closed_at=order.closed_at,
        refunded_fen=order.refunded_fen,
        opened_wallets=list(order.opened_wallets),
        merchant_day=f"{order.merchant_id}#{business_date(order.created_at).isoformat()}",
        expiry_bucket=expiry_bucket(order.order_id, order.expires_at) if order.status is OrderStatus.CREATED else None,
    )


def to_order(item: OrderModel) -> Order:
    return Order(
        order_id=item.order_id,
        merchant_id=item.merchant_id,
        terminal_id=item.terminal_id,
        agent_id=item.agent_id,
        txn=int(item.txn),
        amount_fen=int(item.amount_fen),
        kind=OrderKind(item.kind),
        status=OrderStatus(item.status),
        created_at=float(item.created_at),
        expires_at=float(item.expires_at),
        wallet=Wallet(item.wallet) if item.wallet else None,
        channel=item.channel,
        channel_trade_no=item.channel_trade_no,
        paid_at=float(item.paid_at) if item.paid_at is not None else None,
        closed_at=float(item.closed_at) if item.closed_at is not None else None,
        refunded_fen=int(item.refunded_fen or 0),
        opened_wallets=tuple(item.opened_wallets or ()),
    )


def _status_in(transition: Transition):  # type: ignore[no-untyped-def]
    return OrderModel.status.is_in(*[s.value for s in transition.from_states])


@dataclass(frozen=True)
class StoredOrder:
    order: Order
    qr: str | None
    late_refund_pending: bool
    refund_pending_fen: int = 0  # merchant refunds at the platform, not yet confirmed (store/refunds.py)


@dataclass(frozen=True)
class PaymentBooking:
    """What a verified payment notification books, all at once."""

    order_id: str
    merchant_id: str
    wallet: Wallet
    channel: str
    trade_no: str
    amount_fen: int
    paid_at: float


class OrderStore:
    def __init__(self, settings: Settings, terms_of: TermsLookup = no_terms) -> None:
        """`terms_of(merchant_id)`: the merchant's settlement terms now, to price each entry's fee into
        the merchant-day's running totals (store/settlement_totals.py) in the entry's own transaction."""
        self._settings = settings
        self._terms_of = terms_of

    def _transaction(self) -> TransactWrite:
        return TransactWrite(connection=transaction_connection(self._settings))

    # --- reads -----------------------------------------------------------------------------

    def get(self, order_id: str) -> StoredOrder | None:
        try:
            item = OrderModel.get(order_id, consistent_read=True)
        except DoesNotExist:
            return None
        return StoredOrder(to_order(item), item.qr, item.late_refund == LATE_REFUND_PENDING,
                           int(item.refund_pending_fen or 0))

    def events_for_agent(self, agent_id: str, after_key: str, limit: int) -> list[tuple[str, Order]]:
        """Orders of this agent that became PAID or CLOSED, oldest first, with event_key > after_key."""
        condition = OrderModel.event_key > after_key if after_key else None
        query = OrderModel.events_by_agent.query(agent_id, condition, limit=limit)
        return [(item.event_key, to_order(item)) for item in query]

    def late_refunds_pending(self) -> Iterator[str]:
        for item in OrderModel.late_refunds.query(LATE_REFUND_PENDING):
            yield item.order_id

    def open_orders_due(self, now: float, lookback_hours: int) -> Iterator[str]:
        """Ids of CREATED orders whose expiry has passed, from the sparse expiry index."""
        for hours_ago in range(lookback_hours, -1, -1):
            hour = time.strftime("%Y%m%d%H", time.gmtime(now - hours_ago * 3600))
            for shard in range(EXPIRY_SHARDS):
                for item in OrderModel.open_by_expiry.query(f"{hour}#{shard}", OrderModel.expires_at <= now):
                    yield item.order_id

    # --- creation --------------------------------------------------------------------------

    def create_once(self, order: Order, qr: str | None, dedupe_key: str, answer: dict, request_hash: str) -> bool:
        """Put the order and its (terminal, txn) dedupe record together. False if the key was taken."""
        item = to_model(order)
        item.qr = qr
        dedupe = DedupeModel(dedupe_key, kind="terminal_txn", ref=order.order_id, answer=answer,
                             request_hash=request_hash, created_at=order.created_at)
        try:
            with self._transaction() as tx:
                tx.save(item, condition=OrderModel.order_id.does_not_exist())
                tx.save(dedupe, condition=DedupeModel.dedupe_key.does_not_exist())
        except TransactWriteError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    # --- transitions -----------------------------------------------------------------------

    def note_wallet_opening(self, order_id: str, wallet: Wallet) -> bool:
        """Before a channel order is created at a wallet, remember it (so expiry closes it there too).
        False when the order is no longer open. Idempotent for a wallet already noted."""
        condition = OrderModel.status == OrderStatus.CREATED.value
        if not update_if(OrderModel(order_id),
                         [OrderModel.opened_wallets.set(OrderModel.opened_wallets.append([wallet.value]))],
                         condition & ~OrderModel.opened_wallets.contains(wallet.value)):
            stored = self.get(order_id)
            return bool(stored and stored.order.status is OrderStatus.CREATED
                        and wallet.value in stored.order.opened_wallets)
        return True

    def save_wallet_qr(self, order_id: str, wallet: Wallet, code_url: str) -> None:
        attribute = OrderModel.qr_wechat if wallet is Wallet.WECHAT else OrderModel.qr_alipay
        OrderModel(order_id).update(actions=[attribute.set(code_url)], condition=OrderModel.order_id.exists())

    def wallet_qr(self, order_id: str, wallet: Wallet) -> str | None:
        try:
            item = OrderModel.get(order_id, consistent_read=True)
        except DoesNotExist:
            return None
        return item.qr_wechat if wallet is Wallet.WECHAT else item.qr_alipay

    def book_payment(self, booking: PaymentBooking, now: float) -> None:
        """CREATED -> PAID, the ledger entry and the platform-trade dedupe record, in one transaction.

        Raises ConditionFailed when the order was no longer CREATED (paid another way, or closed) or
        this platform trade was already booked: the caller re-reads and decides.
        """
        order_item = OrderModel(booking.order_id)
        entry = ledger_entry(
            f"order#{booking.order_id}", "payment", booking.merchant_id, booking.paid_at,
            amount_fen=booking.amount_fen, kind="QR_PAYMENT", order_id=booking.order_id,
            wallet=booking.wallet.value, channel=booking.channel, channel_trade_no=booking.trade_no,
            created_at=now,
        )
        dedupe = DedupeModel(trade_dedupe_key(booking.wallet, booking.trade_no), kind="platform_trade",
                             ref=booking.order_id, created_at=now)
        try:
            with self._transaction() as tx:
                tx.update(
                    order_item,
                    actions=[
                        OrderModel.status.set(MARK_PAID.to_state.value),
                        OrderModel.wallet.set(booking.wallet.value),
                        OrderModel.channel.set(booking.channel),
                        OrderModel.channel_trade_no.set(booking.trade_no),
                        OrderModel.paid_at.set(booking.paid_at),
                        OrderModel.event_key.set(event_key(now, booking.order_id)),
                        OrderModel.expiry_bucket.remove(),
                    ],
                    condition=_status_in(MARK_PAID) & (OrderModel.amount_fen == booking.amount_fen),
                )
                tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
                tx.save(dedupe, condition=DedupeModel.dedupe_key.does_not_exist())
                self._add_totals(tx, entry)
        except TransactWriteError as error:
            if is_condition_failure(error):
                raise ConditionFailed(str(error)) from error
            raise

    def book_late_payment(self, booking: PaymentBooking, accept: bool, now: float) -> None:
        """A payment for an order that was closed (or paid through another wallet) is never lost:
        it is booked with its dedupe record and then refunded, or, when the merchant's policy
        accepts late payments and the order was closed, it pays the order (CLOSED -> PAID)."""
        order_item = OrderModel(booking.order_id)
        entry = ledger_entry(
            f"order#{booking.order_id}", f"late#{booking.wallet.value}#{booking.trade_no}",
            booking.merchant_id, booking.paid_at,
            amount_fen=booking.amount_fen, kind="ACCEPTED_LATE_PAYMENT" if accept else "LATE_PAYMENT",
            order_id=booking.order_id, wallet=booking.wallet.value, channel=booking.channel,
            channel_trade_no=booking.trade_no, created_at=now,
        )
        dedupe = DedupeModel(trade_dedupe_key(booking.wallet, booking.trade_no), kind="platform_trade",
                             ref=booking.order_id, created_at=now)
        try:
            with self._transaction() as tx:
                if accept:
                    tx.update(order_item, actions=[
                        OrderModel.status.set(ACCEPT_LATE.to_state.value),
                        OrderModel.wallet.set(booking.wallet.value),
                        OrderModel.channel.set(booking.channel),
                        OrderModel.channel_trade_no.set(booking.trade_no),
                        OrderModel.paid_at.set(booking.paid_at),
                        OrderModel.event_key.set(event_key(now, booking.order_id)),
                    ], condition=_status_in(ACCEPT_LATE))
                else:
                    tx.update(order_item, actions=[OrderModel.late_refund.set(LATE_REFUND_PENDING)],
                              condition=OrderModel.order_id.exists())
                tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
                tx.save(dedupe, condition=DedupeModel.dedupe_key.does_not_exist())
                self._add_totals(tx, entry)
        except TransactWriteError as error:
            if is_condition_failure(error):
                raise ConditionFailed(str(error)) from error
            raise

    def book_late_refund(self, order: Order, wallet: str, trade_no: str, amount_fen: int,
                         refund_no: str, now: float, still_pending: bool) -> None:
        """The automatic refund of a late payment succeeded at the channel: book it once."""
        order_id = order.order_id
        entry = ledger_entry(
            f"order#{order_id}", f"lateref#{wallet}#{trade_no}", order.merchant_id, now,
            amount_fen=-amount_fen, kind="LATE_REFUND", order_id=order_id, wallet=wallet,
            channel_trade_no=refund_no, created_at=now,
        )
        try:
            with self._transaction() as tx:
                action = (OrderModel.late_refund.set(LATE_REFUND_PENDING) if still_pending
                          else OrderModel.late_refund.remove())
                tx.update(OrderModel(order_id), actions=[action], condition=OrderModel.order_id.exists())
                tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
                self._add_totals(tx, entry)
        except TransactWriteError as error:
            if is_condition_failure(error):
                raise ConditionFailed(str(error)) from error
            raise

    def _add_totals(self, tx: TransactWrite, entry: LedgerEntryModel) -> None:
        """The entry's counters into its merchant-day's totals item, in the entry's transaction. Only
        settled money is priced, so late payments never need the merchant's terms."""
        view = entry_view(entry)
        terms = self._terms_of(entry.merchant_id) if section_of(view) == "settled" else None
        add_totals(tx, entry.merchant_id, entry.business_date, entry.order_id or entry.account_id, [view], terms)

    def close(self, order_id: str, now: float) -> None:
        """CREATED -> CLOSED; ConditionFailed when it was paid or closed meanwhile."""
        try:
            OrderModel(order_id).update(
                actions=[
                    OrderModel.status.set(CLOSE.to_state.value),
                    OrderModel.closed_at.set(now),
                    OrderModel.event_key.set(event_key(now, order_id)),
                    OrderModel.expiry_bucket.remove(),
                ],
                condition=_status_in(CLOSE),
            )
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise ConditionFailed(str(error)) from error
            raise


def ledger_entry(account_id: str, entry_id: str, merchant_id: str, at: float, **fields: object) -> LedgerEntryModel:
    day = business_date(at).isoformat()
    return LedgerEntryModel(
        account_id, entry_id, merchant_id=merchant_id, merchant_day=f"{merchant_id}#{day}",
        entry_ref=f"{account_id}|{entry_id}", business_date=day, **fields,
    )


def trade_dedupe_key(wallet: Wallet, trade_no: str) -> str:
    return f"trade#{wallet.value}#{trade_no}"


def is_condition_failure(error: TransactWriteError) -> bool:
    reasons = getattr(error, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)
