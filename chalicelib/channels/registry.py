"""Builds a merchant's channel from its (already unsealed) settings, importing the SDK lazily.

Each channel module exposes `build(settings: dict, gateway: str | None, timeout_s: float, clock)`;
`gateway` is the platform's base URL (None in production: the SDK's own default), pointed at the
sandbox locally and in tests.
"""
from __future__ import annotations

import importlib
import time
from typing import Callable

from chalicelib.channels.base import PaymentChannel

CHANNEL_MODULES = {
    "wechat_v2": "chalicelib.channels.wechat_v2",
    "wechat_v3": "chalicelib.channels.wechat_v3",
    "alipay": "chalicelib.channels.alipay",
}


def build_channel(kind: str, settings: dict, gateway: str | None, timeout_s: float = 5.0,
                  clock: Callable[[], float] = time.time) -> PaymentChannel:
    """`clock` is the service's clock: timestamps a channel signs or checks (v3 notifications'
    300 s window, Alipay's Beijing timestamps) follow it, so a fixed test clock works end to end."""
    try:
        module_name = CHANNEL_MODULES[kind]
    except KeyError:
        raise ValueError(f"unknown channel kind {kind!r}") from None
    module = importlib.import_module(module_name)
    return module.build(settings, gateway=gateway, timeout_s=timeout_s, clock=clock)


def split_secrets(kind: str, settings: dict) -> tuple[dict, dict]:
    """(public settings, secret settings) by the channel module's SECRET_SETTINGS: what the store
    keeps in clear and what it seals with KMS. Importing the module does not import its SDK."""
    secret_names = importlib.import_module(CHANNEL_MODULES[kind]).SECRET_SETTINGS
    public = {k: v for k, v in settings.items() if k not in secret_names}
    secret = {k: v for k, v in settings.items() if k in secret_names}
    return public, secret
