"""The expiry job's use case: unpaid orders past their expiry are queried, then closed at the channel.

Late payments still waiting for their automatic refund are retried here too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from chalicelib.domain.clock import Clock
from chalicelib.domain.orders import OrderStatus, Wallet
from chalicelib.services.orders import OrderService
from chalicelib.services.payments import PaymentBooker
from chalicelib.services.ports import Channels
from chalicelib.store.ledger import LedgerStore
from chalicelib.store.orders import OrderStore

log = logging.getLogger(__name__)


@dataclass
class ExpiryReport:
    examined: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    paid: list[str] = field(default_factory=list)
    left_open: list[str] = field(default_factory=list)
    late_refunds: dict[str, str] = field(default_factory=dict)


class ExpiryService:
    def __init__(self, orders: OrderStore, ledger: LedgerStore, order_service: OrderService, channels: Channels,
                 booker: PaymentBooker, clock: Clock, lookback_hours: int = 6) -> None:
        self._orders = orders
        self._ledger = ledger
        self._order_service = order_service
        self._channels = channels
        self._booker = booker
        self._clock = clock
        self._lookback_hours = lookback_hours

    def run(self) -> ExpiryReport:
        report = ExpiryReport()
        for order_id in list(self._orders.open_orders_due(self._clock.now(), self._lookback_hours)):
            stored = self._orders.get(order_id)
            if stored is None or stored.order.status is not OrderStatus.CREATED:
                continue
            report.examined.append(order_id)
            after = self._order_service.close_everywhere(stored.order)
            if after.status is OrderStatus.CLOSED:
                report.closed.append(order_id)
            elif after.status is OrderStatus.CREATED:
                report.left_open.append(order_id)  # a channel did not answer: next run
            else:
                report.paid.append(order_id)
        for order_id in list(self._orders.late_refunds_pending()):
            report.late_refunds[order_id] = self.retry_late_refunds(order_id)
        log.info("expiry: examined %d closed %d paid %d left open %d late refunds %d", len(report.examined),
                 len(report.closed), len(report.paid), len(report.left_open), len(report.late_refunds))
        return report

    def retry_late_refunds(self, order_id: str) -> str:
        stored = self._orders.get(order_id)
        if stored is None:
            return "MISSING"
        outcome = "NONE"
        for late in self._ledger.unrefunded_late_payments(order_id):
            found = self._channels.for_merchant(stored.order.merchant_id, late.wallet)
            if found is None:
                outcome = "NO_CHANNEL"
                continue
            outcome = self._booker.refund_late(stored.order, Wallet(late.wallet), late.trade_no,
                                               late.amount_fen, found[0])
        return outcome
