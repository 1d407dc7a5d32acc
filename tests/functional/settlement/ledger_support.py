"""Booking a settlement test's day through the real store transactions, and reading back what settlement wrote."""
from __future__ import annotations

import itertools
from datetime import date, datetime, time

from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.container import Container
from chalicelib.domain.clock import BEIJING
from chalicelib.domain.ids import new_order_id
from chalicelib.domain.orders import Order, OrderKind, OrderStatus, Wallet
from chalicelib.store.connection import transaction_connection
from chalicelib.store.models import LedgerEntryModel
from chalicelib.store.orders import PaymentBooking, ledger_entry
from chalicelib.store.settlement_models import DealerLedgerModel, SettlementModel
from chalicelib.store.settlement_totals import add_totals, entry_view
from tests.support.world import World

_txn = itertools.count(1)
CHANNEL_OF = {"wechat": "wechat_v2", "alipay": "alipay"}


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> float:
    """Unix seconds of a Beijing wall-clock time."""
    return datetime.combine(day, time(hour, minute, second), BEIJING).timestamp()


def move_clock(clock, to: float) -> None:  # type: ignore[no-untyped-def]
    """FixedClock only moves forward by advance(); tests jump to a wall-clock time of their day."""
    clock.advance(to - clock.now())


def paid_order(container: Container, world: World, amount_fen: int, paid_at: float, wallet: str = "wechat",
               channel: str | None = None) -> Order:
    """An order created and paid at `paid_at`, booked by the store's payment transaction."""
    txn = next(_txn)
    order = Order(new_order_id(paid_at), world.merchant_id, world.terminal_id, world.agent_id, txn, amount_fen,
                  OrderKind.QR, OrderStatus.CREATED, paid_at - 30, paid_at + 270)
    assert container.orders.create_once(order, None, f"txn#{world.terminal_id}#{txn}", {}, "test")
    trade_no = f"T{wallet[0].upper()}{order.order_id}"
    container.orders.book_payment(PaymentBooking(order.order_id, world.merchant_id, Wallet(wallet),
                                                 channel or CHANNEL_OF[wallet], trade_no, amount_fen, paid_at), paid_at)
    stored = container.orders.get(order.order_id)
    assert stored is not None
    return stored.order


def late_payment_refunded(container: Container, world: World, order: Order, amount_fen: int, when: float) -> None:
    """A second payment of an order (through the other wallet), booked late and refunded the same day."""
    booking = PaymentBooking(order.order_id, world.merchant_id, Wallet.ALIPAY, "alipay", f"LATE{order.order_id}",
                             amount_fen, when)
    container.orders.book_late_payment(booking, accept=False, now=when)
    container.orders.book_late_refund(order, "alipay", booking.trade_no, amount_fen, "RLATE", when + 60,
                                      still_pending=False)


def card_entry(settings: Settings, merchant_id: str, account: str, entry_id: str, amount_fen: int, when: float,
               kind: str = "CARD_PAYMENT", wallet: str = "cash") -> None:
    """A card ledger line as the IC-card module books it (account card#..., channel card)."""
    entry = ledger_entry(f"card#{account}", entry_id, merchant_id, when, amount_fen=amount_fen, kind=kind,
                         wallet=wallet, channel="card", created_at=when)
    with TransactWrite(connection=transaction_connection(settings)) as tx:  # as the card store books it
        tx.save(entry, condition=LedgerEntryModel.entry_id.does_not_exist())
        add_totals(tx, merchant_id, entry.business_date, account, [entry_view(entry)], None)


def settlement_rows(merchant_id: str) -> list[dict]:
    return [item.attribute_values for item in SettlementModel.query(merchant_id)]


def dealer_rows(dealer_id: str) -> list[dict]:
    return [item.attribute_values for item in DealerLedgerModel.query(dealer_id)]


def forget_settlements(merchant_id: str, dealer_id: str) -> None:
    """Test-only reset between crash runs: delete what settlement wrote for this merchant and dealer."""
    for item in SettlementModel.query(merchant_id):
        item.delete()
    for item in DealerLedgerModel.query(dealer_id):
        item.delete()


def ledger_of_day(merchant_id: str, day: date) -> list[dict]:
    return [i.attribute_values for i in LedgerEntryModel.by_merchant_day.query(f"{merchant_id}#{day.isoformat()}")]
