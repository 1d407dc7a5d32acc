"""Identifiers that sort by time and never collide across Lambdas (no counter shared by all)."""
from __future__ import annotations

import secrets

from chalicelib.domain.clock import beijing_datetime


def new_order_id(now: float) -> str:
    """'P' + Beijing time to the ms + 8 random hex: 26 chars, within every channel's out_trade_no
    limit (WeChat 32, Alipay 64), letters and digits only, sortable by creation time."""
    stamp = beijing_datetime(now).strftime("%Y%m%d%H%M%S")
    millis = int(now * 1000) % 1000
    return f"P{stamp}{millis:03d}{secrets.token_hex(4).upper()}"


def new_refund_id(order_id: str, reason: str) -> str:
    """Deterministic: one automatic refund per (order, reason), however often it is retried."""
    return f"R{order_id[1:]}{reason[:4].upper()}"
