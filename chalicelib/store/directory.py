"""Who is who: dealers, merchants, providers, sites, edge agents, terminals; channel settings unsealed.

Configuration changes rarely and every payment needs it, so reads are cached for the life of the
container for `ttl_s` seconds (the secrets inside stay cached by the sealer).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

from pynamodb.exceptions import DoesNotExist

from chalicelib.store.models import (
    EdgeAgentModel,
    MerchantModel,
    ProviderModel,
    TerminalModel,
)
from chalicelib.store.secrets import Sealer

CHANNEL_PURPOSE = "channel"
EDGE_PURPOSE = "edge_agent"
TERMINAL_PURPOSE = "terminal"


@dataclass(frozen=True)
class MerchantInfo:
    merchant_id: str
    dealer_id: str
    name: str
    scheme: int
    fee_rate_ppm: int
    dealer_share_ppm: int
    late_payment_policy: str
    status: str
    wallets: tuple[str, ...]  # wallets this merchant can take QR payments with


@dataclass(frozen=True)
class ChannelConfig:
    wallet: str
    kind: str  # wechat_v2 / wechat_v3 / alipay
    settings: dict  # secrets included, unsealed: never log or return this


@dataclass(frozen=True)
class EdgeAgentInfo:
    agent_id: str
    merchant_id: str
    site_id: str
    secret: str
    active: bool


@dataclass(frozen=True)
class TerminalInfo:
    terminal_id: str
    agent_id: str
    merchant_id: str
    site_id: str
    active: bool


class _TtlCache:
    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._items: dict[object, tuple[float, object]] = {}

    def get_or_load(self, key: object, load: Callable[[], object]) -> object:
        hit = self._items.get(key)
        now = self._clock()
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if value is not None:
            self._items[key] = (now + self._ttl, value)
        return value

    def clear(self) -> None:
        self._items.clear()


class Directory:
    def __init__(self, sealer: Sealer, ttl_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self._sealer = sealer
        self._cache = _TtlCache(ttl_s, clock)

    def clear_cache(self) -> None:
        self._cache.clear()

    def merchant(self, merchant_id: str) -> MerchantInfo | None:
        item = self._merchant_item(merchant_id)
        if item is None:
            return None
        wallets = tuple(sorted(item.channels or {})) if item.scheme == 1 else self._bank_wallets(item)
        return MerchantInfo(item.merchant_id, item.dealer_id, item.name, int(item.scheme),
                            int(item.fee_rate_ppm), int(item.dealer_share_ppm), item.late_payment_policy,
                            item.status, wallets)

    def channel_config(self, merchant_id: str, wallet: str) -> ChannelConfig | None:
        """The unsealed settings a channel is built from; scheme 2 merges the bank's account with the
        merchant's sub-merchant binding (WeChat sub_mch_id, Alipay app_auth_token)."""

        def load() -> ChannelConfig | None:
            merchant = self._merchant_item(merchant_id)
            if merchant is None:
                return None
            if int(merchant.scheme) == 1:
                entry = (merchant.channels or {}).get(wallet)
                return self._unseal_entry(wallet, entry) if entry else None
            provider = self._provider_item("bank")
            entry = (provider.channels or {}).get(wallet) if provider else None
            binding = merchant.bank_binding or {}
            if not entry:
                return None
            config = self._unseal_entry(wallet, entry)
            if wallet == "wechat" and binding.get("wechat_sub_mch_id"):
                config.settings["sub_mch_id"] = binding["wechat_sub_mch_id"]
            elif wallet == "alipay" and binding.get("alipay_app_auth_token_sealed"):
                config.settings["app_auth_token"] = self._sealer.unseal(
                    binding["alipay_app_auth_token_sealed"], CHANNEL_PURPOSE)
                config.settings["seller_id"] = binding.get("alipay_seller_id", "")
            else:
                return None  # the bank has not bound this merchant for that wallet
            return config

        return self._cache.get_or_load(("channel", merchant_id, wallet), load)  # type: ignore[return-value]

    def edge_agent(self, agent_id: str) -> EdgeAgentInfo | None:
        def load() -> EdgeAgentInfo | None:
            try:
                item = EdgeAgentModel.get(agent_id)
            except DoesNotExist:
                return None
            secret = self._sealer.unseal(item.secret_sealed, EDGE_PURPOSE)
            return EdgeAgentInfo(item.agent_id, item.merchant_id, item.site_id, secret, item.status == "active")

        return self._cache.get_or_load(("agent", agent_id), load)  # type: ignore[return-value]

    def terminal(self, terminal_id: str) -> TerminalInfo | None:
        def load() -> TerminalInfo | None:
            try:
                item = TerminalModel.get(terminal_id)
            except DoesNotExist:
                return None
            return TerminalInfo(item.terminal_id, item.agent_id, item.merchant_id, item.site_id,
                                item.status == "active")

        return self._cache.get_or_load(("terminal", terminal_id), load)  # type: ignore[return-value]

    def terminal_keys(self, agent_id: str) -> dict[str, str]:
        """The LOGIN keys of an agent's terminals (the agent checks LOGIN MACs itself)."""
        return {
            item.terminal_id: self._sealer.unseal(item.key_sealed, TERMINAL_PURPOSE)
            for item in TerminalModel.by_agent.query(agent_id)
            if item.status == "active"
        }

    # --- internals --------------------------------------------------------------------------

    def _merchant_item(self, merchant_id: str) -> MerchantModel | None:
        def load() -> MerchantModel | None:
            try:
                return MerchantModel.get(merchant_id)
            except DoesNotExist:
                return None

        return self._cache.get_or_load(("merchant", merchant_id), load)  # type: ignore[return-value]

    def _provider_item(self, provider_id: str) -> ProviderModel | None:
        def load() -> ProviderModel | None:
            try:
                return ProviderModel.get(provider_id)
            except DoesNotExist:
                return None

        return self._cache.get_or_load(("provider", provider_id), load)  # type: ignore[return-value]

    def _bank_wallets(self, merchant: MerchantModel) -> tuple[str, ...]:
        binding = merchant.bank_binding or {}
        wallets = []
        if binding.get("wechat_sub_mch_id"):
            wallets.append("wechat")
        if binding.get("alipay_app_auth_token_sealed"):
            wallets.append("alipay")
        return tuple(sorted(wallets))

    def _unseal_entry(self, wallet: str, entry: dict) -> ChannelConfig:
        settings = dict(entry.get("settings") or {})
        if entry.get("sealed"):
            settings.update(json.loads(self._sealer.unseal(entry["sealed"], CHANNEL_PURPOSE)))
        return ChannelConfig(wallet=wallet, kind=entry["kind"], settings=settings)


def sealed_channel_entry(sealer: Sealer, kind: str, settings: dict, secrets: dict) -> dict:
    """How a channel's settings are stored: public settings in clear, secrets sealed as one blob."""
    return {"kind": kind, "settings": settings,
            "sealed": sealer.seal(json.dumps(secrets, sort_keys=True), CHANNEL_PURPOSE) if secrets else ""}
