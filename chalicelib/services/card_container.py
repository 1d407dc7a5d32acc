"""Builds the card services once per Container (the shared Container is not ours to edit).

`card_services(container.current())` returns the same CardServices while the container is the
same object, and builds new ones when tests or the local stack install another container.
"""
from __future__ import annotations

import threading
from functools import cached_property

from chalicelib.container import Container
from chalicelib.services.card_admin import CardAdminService
from chalicelib.services.card_jsapi import JsapiPrepay, WeChatJsapi
from chalicelib.services.card_mp_token import MpTokens
from chalicelib.services.card_offline import OfflineService
from chalicelib.services.card_recharge import Mp, OnlineRechargeService
from chalicelib.services.card_statement import CardStatementService
from chalicelib.services.card_subsidy import SubsidyService
from chalicelib.services.card_wechat_mp import WeChatMp
from chalicelib.services.cards import CardPaymentService
from chalicelib.store.canteen_rules import CanteenRulesStore
from chalicelib.store.card_blacklist import BlacklistStore
from chalicelib.store.card_exceptions import CardExceptionStore
from chalicelib.store.card_holders import HolderStore
from chalicelib.store.card_lifecycle import CardLifecycleStore
from chalicelib.store.card_mp_tokens import MpTokenStore
from chalicelib.store.card_recharges import RechargeStore
from chalicelib.store.cards import CardStore


class CardServices:
    """`jsapi` and `mp` replace the WeChat adapters (tests pass fakes here, never by patching)."""

    def __init__(self, container: Container, jsapi: JsapiPrepay | None = None, mp: Mp | None = None) -> None:
        self.container = container
        self._jsapi = jsapi
        self._mp = mp

    @cached_property
    def cards(self) -> CardStore:
        return CardStore(self.container.settings)

    @cached_property
    def rules(self) -> CanteenRulesStore:
        return CanteenRulesStore(clock=self.container.clock.now)

    @cached_property
    def blacklist(self) -> BlacklistStore:
        return BlacklistStore()

    @cached_property
    def holders(self) -> HolderStore:
        return HolderStore()

    @cached_property
    def lifecycle(self) -> CardLifecycleStore:
        return CardLifecycleStore(self.container.settings, self.blacklist)

    @cached_property
    def payments(self) -> CardPaymentService:
        return CardPaymentService(self.cards, self.rules, self.container.directory, self.container.clock)

    @cached_property
    def admin(self) -> CardAdminService:
        return CardAdminService(self.cards, self.holders, self.lifecycle, self.rules, self.container.clock)

    @cached_property
    def statements(self) -> CardStatementService:
        return CardStatementService(self.cards, self.admin)

    @cached_property
    def exceptions(self) -> CardExceptionStore:
        return CardExceptionStore(self.container.settings)

    @cached_property
    def offline(self) -> OfflineService:
        return OfflineService(self.cards, self.exceptions, self.rules, self.container.clock)

    @cached_property
    def subsidy(self) -> SubsidyService:
        return SubsidyService(self.cards, self.rules, self.container.clock)

    @cached_property
    def recharges(self) -> RechargeStore:
        return RechargeStore(self.container.settings)

    @cached_property
    def mp(self) -> Mp:
        settings = self.container.settings
        return self._mp or WeChatMp(self.container.directory, settings.channel_gateway, self.mp_tokens,
                                    settings.channel_timeout_s)

    @cached_property
    def mp_tokens(self) -> MpTokens:
        """The 服务号 access tokens, shared with every other container through DynamoDB."""
        return MpTokens(MpTokenStore(), self.container.sealer, self.container.clock.now, self.container.sleep)

    @cached_property
    def online(self) -> OnlineRechargeService:
        settings = self.container.settings
        jsapi = self._jsapi or WeChatJsapi(self.container.directory, settings.channel_gateway,
                                           settings.channel_timeout_s)
        return OnlineRechargeService(self.cards, self.holders, self.recharges, self.rules, jsapi, self.mp,
                                     self.container.clock, settings.public_base_url, self.container.channels)


_lock = threading.Lock()
_built: CardServices | None = None


def card_services(container: Container) -> CardServices:
    global _built
    with _lock:
        if _built is None or _built.container is not container:
            _built = CardServices(container)
        return _built


def install_card_services(services: CardServices) -> None:
    """Tests and the local stack put their own (with fake WeChat adapters) in place."""
    global _built
    with _lock:
        _built = services
