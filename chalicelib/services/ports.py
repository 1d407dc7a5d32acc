"""The small interfaces services use to reach channels; tests pass fakes through constructors."""
from __future__ import annotations

import time
from typing import Callable, Protocol

from chalicelib.channels.base import PaymentChannel
from chalicelib.channels.registry import build_channel
from chalicelib.store.directory import ChannelConfig, Directory

WALLET_OF_KIND = {"wechat_v2": "wechat", "wechat_v3": "wechat", "alipay": "alipay"}


class Channels(Protocol):
    def for_merchant(self, merchant_id: str, wallet: str) -> tuple[PaymentChannel, ChannelConfig] | None: ...


class DirectoryChannels:
    """Builds channels from the directory's unsealed settings; one instance per (merchant, wallet) per container."""

    def __init__(self, directory: Directory, gateway: str | None, timeout_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._directory = directory
        self._gateway = gateway
        self._timeout_s = timeout_s
        self._clock = clock
        self._built: dict[tuple[str, str, str], PaymentChannel] = {}

    def for_merchant(self, merchant_id: str, wallet: str) -> tuple[PaymentChannel, ChannelConfig] | None:
        config = self._directory.channel_config(merchant_id, wallet)
        if config is None:
            return None
        key = (merchant_id, wallet, config.kind)
        channel = self._built.get(key)
        if channel is None:
            channel = build_channel(config.kind, config.settings, gateway=self._gateway, timeout_s=self._timeout_s,
                                    clock=self._clock)
            self._built[key] = channel
        return channel, config
