"""Writes that set up who is who: dealers, merchants, the bank provider, sites, agents, terminals.

Used by the local stack's demo seed, by tests, and later by the console. Secrets are sealed here,
on the way in; nothing in this module ever returns one.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from chalicelib.store.directory import CHANNEL_PURPOSE, EDGE_PURPOSE, TERMINAL_PURPOSE, sealed_channel_entry
from chalicelib.store.models import (
    DealerModel,
    EdgeAgentModel,
    MerchantModel,
    ProviderModel,
    SiteModel,
    TerminalModel,
)
from chalicelib.store.secrets import Sealer


@dataclass(frozen=True)
class ChannelAccount:
    """One wallet's account: `kind` (wechat_v2 / wechat_v3 / alipay), public settings, secrets."""

    wallet: str
    kind: str
    settings: dict
    secrets: dict = field(default_factory=dict)

    @classmethod
    def sealing_secrets(cls, wallet: str, kind: str, settings: dict) -> "ChannelAccount":
        """From a channel's whole settings: its SECRET_SETTINGS go to `secrets`, to be sealed."""
        from chalicelib.channels.registry import split_secrets

        public, secret = split_secrets(kind, settings)
        return cls(wallet, kind, public, secret)


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


class Registry:
    def __init__(self, sealer: Sealer, clock_now: float) -> None:
        self._sealer = sealer
        self._now = clock_now

    def put_dealer(self, dealer_id: str, name: str, login: str, password: str) -> None:
        DealerModel(dealer_id, name=name, login=login, password_hash=hash_password(password),
                    created_at=self._now).save()

    def put_provider(self, provider_id: str, accounts: list[ChannelAccount]) -> None:
        ProviderModel(provider_id, channels={
            a.wallet: sealed_channel_entry(self._sealer, a.kind, a.settings, a.secrets) for a in accounts
        }).save()

    def put_merchant(self, merchant_id: str, dealer_id: str, name: str, scheme: int,
                     accounts: list[ChannelAccount] = (), fee_rate_ppm: int = 6_000,
                     dealer_share_ppm: int = 1_000, late_payment_policy: str = "refund",
                     bank_binding: dict | None = None) -> None:
        """`bank_binding` (scheme 2): {"wechat_sub_mch_id", "alipay_app_auth_token", "alipay_seller_id"}."""
        binding = dict(bank_binding or {})
        token = binding.pop("alipay_app_auth_token", None)
        if token:
            binding["alipay_app_auth_token_sealed"] = self._sealer.seal(token, CHANNEL_PURPOSE)
        MerchantModel(
            merchant_id, dealer_id=dealer_id, name=name, scheme=scheme, fee_rate_ppm=fee_rate_ppm,
            dealer_share_ppm=dealer_share_ppm, late_payment_policy=late_payment_policy,
            channels={a.wallet: sealed_channel_entry(self._sealer, a.kind, a.settings, a.secrets) for a in accounts},
            bank_binding=binding, created_at=self._now,
        ).save()

    def set_bank_binding(self, merchant_id: str, bank_binding: dict) -> None:
        """Bind a scheme-2 merchant to the bank's accounts (from the bank's code). The merchant must
        exist and be scheme 2; anything else changes nothing."""
        binding = dict(bank_binding)
        token = binding.pop("alipay_app_auth_token", None)
        if token:
            binding["alipay_app_auth_token_sealed"] = self._sealer.seal(token, CHANNEL_PURPOSE)
        MerchantModel(merchant_id).update(actions=[MerchantModel.bank_binding.set(binding)],
                                          condition=MerchantModel.scheme == 2)

    def put_site(self, site_id: str, merchant_id: str, name: str) -> None:
        SiteModel(site_id, merchant_id=merchant_id, name=name).save()

    def put_edge_agent(self, agent_id: str, site_id: str, merchant_id: str, secret: str) -> None:
        EdgeAgentModel(agent_id, site_id=site_id, merchant_id=merchant_id,
                       secret_sealed=self._sealer.seal(secret, EDGE_PURPOSE), created_at=self._now).save()

    def put_terminal(self, terminal_id: str, agent_id: str, merchant_id: str, site_id: str, key: str,
                     name: str = "") -> None:
        TerminalModel(terminal_id, agent_id=agent_id, merchant_id=merchant_id, site_id=site_id, name=name,
                      key_sealed=self._sealer.seal(key, TERMINAL_PURPOSE)).save()
