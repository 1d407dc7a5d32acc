"""Builds the adapters and services once per cold start (the todo-app pattern: app.py wires only).

Tests build their own Container with a fixed clock and their own settings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

from chalicelib.config import Settings
from chalicelib.domain.clock import Clock, Sleep, SystemClock
from chalicelib.services.expiry import ExpiryService
from chalicelib.services.licences import LicenceService
from chalicelib.services.notifications import NotificationService
from chalicelib.services.orders import OrderService, OrderSettings
from chalicelib.services.payments import PaymentBooker
from chalicelib.services.refunds import RefundService
from chalicelib.services.ports import Channels, DirectoryChannels
from chalicelib.store.connection import bind_models
from chalicelib.store.dedupe import DedupeStore
from chalicelib.store.directory import Directory
from chalicelib.store.ledger import LedgerStore
from chalicelib.store.licences import LicenceStore
from chalicelib.store.orders import OrderStore
from chalicelib.store.refunds import RefundStore
from chalicelib.store.settlement_totals import terms_from
from chalicelib.store.secrets import KmsSealer, Sealer


@dataclass
class Container:
    settings: Settings
    clock: Clock
    sleep: Sleep = time.sleep
    sealer_override: Sealer | None = None
    channels_override: Channels | None = None

    def __post_init__(self) -> None:
        bind_models(self.settings)

    @cached_property
    def sealer(self) -> Sealer:
        return self.sealer_override or KmsSealer(self.settings)

    @cached_property
    def directory(self) -> Directory:
        return Directory(self.sealer, clock=self.clock.now)

    @cached_property
    def orders(self) -> OrderStore:
        return OrderStore(self.settings, terms_from(self.directory.merchant))

    @cached_property
    def dedupe(self) -> DedupeStore:
        return DedupeStore()

    @cached_property
    def ledger(self) -> LedgerStore:
        return LedgerStore()

    @cached_property
    def channels(self) -> Channels:
        return self.channels_override or DirectoryChannels(
            self.directory, self.settings.channel_gateway, self.settings.channel_timeout_s, self.clock.now)

    @cached_property
    def refund_store(self) -> RefundStore:
        """Refund requests of merchants and of late payments; each refund's fee is priced into its day's totals."""
        return RefundStore(self.settings, self.dedupe, terms_from(self.directory.merchant))

    @cached_property
    def booker(self) -> PaymentBooker:
        return PaymentBooker(self.orders, self.dedupe, self.clock, self.refund_store, self.ledger)

    @cached_property
    def licences(self) -> LicenceService:
        return LicenceService(LicenceStore(self.settings), self.directory, self.clock)

    @cached_property
    def order_service(self) -> OrderService:
        return OrderService(self.orders, self.dedupe, self.directory, self.channels, self.booker, self.clock,
                            self.sleep, OrderSettings(self.settings.public_base_url, self.settings.qr_order_ttl_s),
                            self.licences.licence_allows_new_qr_orders)

    @cached_property
    def refunds(self) -> RefundService:
        """Merchant refunds; each refund's fee is priced into its day's settlement totals."""
        return RefundService(self.orders, self.refund_store, self.channels, self.clock)

    @cached_property
    def notifications(self) -> NotificationService:
        return NotificationService(self.orders, self.directory, self.channels, self.booker,
                                   self.settings.public_base_url)

    @cached_property
    def expiry(self) -> ExpiryService:
        return ExpiryService(self.orders, self.ledger, self.order_service, self.channels, self.booker, self.clock)


_current: Container | None = None


def current() -> Container:
    """The container of this Lambda container (built on first use, from the environment)."""
    global _current
    if _current is None:
        _current = Container(Settings.from_env(), SystemClock())
    return _current


def install(container: Container) -> None:
    """Tests and the local stack put their own container in place."""
    global _current
    _current = container
