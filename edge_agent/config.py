"""The edge agent's settings: one frozen dataclass, read from a JSON or TOML file.

Only ``agent_id``, ``agent_secret`` and ``cloud_url`` are required; every other name has the
default below. Times are seconds (floats allowed, so tests can use short ones). Example (TOML)::

    agent_id = "E-DEMO"
    agent_secret = "demo-edge-secret"
    cloud_url = "http://127.0.0.1:8000"
    listen_port = 9100
    data_dir = "/var/lib/scanpay-edge"

    [offline_limits]          # used for a terminal until the cloud sends its own limits
    max_payment_fen = 2000
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .event_loop import CHOICES as LOOP_CHOICES

__all__ = ["AgentConfig", "CARD_PAY_BATCH_ITEMS", "CARD_PAY_CALLS_IN_FLIGHT", "CARD_PAY_OVERLAP_AFTER_S",
           "OfflineLimits", "load_config"]

# Card-pay batching defaults (edge_agent/card_batch.py), here so the settings and the batcher's own
# defaults are one value each.
# Payments per pay-batch call: the cloud takes at most 100; 50 cards + 50 dedupe records keep its
# one BatchGetItem whole.
CARD_PAY_BATCH_ITEMS = 50
# Card-pay calls at once; more swipes than that queue and go together. Measured on the bench: with
# 2, a burst of 1,000 terminals' first swipes left about 100 past the 800 ms deadline (the answers
# of only 100 swipes are handled per turn of a loop busy with 1,000 frames); with 4, none.
CARD_PAY_CALLS_IN_FLIGHT = 4
# With a call in flight, queued swipes wait for it (and go together) unless the queue holds a full
# batch or its oldest swipe has waited this long: then another call starts. Small beside the 800 ms
# deadline and a cloud round trip.
CARD_PAY_OVERLAP_AFTER_S = 0.02


@dataclass(frozen=True)
class OfflineLimits:
    """What a terminal may accept while the cloud is away (all amounts fen, per Beijing day).

    A limit of 0 forbids offline payments outright.
    """

    max_payment_fen: int = 2_000
    max_card_day_fen: int = 5_000
    max_card_day_count: int = 5
    max_terminal_pending: int = 500  # records of one terminal waiting for upload

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "OfflineLimits":
        known = {f.name for f in fields(cls)}
        clean = {}
        for name, value in values.items():
            if name not in known:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"offline limit {name} must be a non-negative int")
            clean[name] = value
        return cls(**clean)


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    agent_secret: str
    cloud_url: str
    listen_host: str = "0.0.0.0"
    listen_port: int = 9100
    data_dir: str = "./edge-data"
    max_connections: int = 2_000
    event_loop: str = "auto"  # auto (uvloop when installed), uvloop, asyncio: see edge_agent/event_loop.py
    # Terminal link
    login_timeout_s: float = 10.0  # a connection must log in this soon after it opens
    idle_timeout_s: float = 90.0  # no byte at all for this long (3 missed heartbeats): closed
    incomplete_frame_timeout_s: float = 10.0  # protocol.md
    push_resend_s: float = 3.0  # protocol.md
    login_skew_s: float = 300.0  # protocol.md
    time_set_drift_s: float = 5.0  # a terminal clock off by more gets a TIME_SET
    max_inflight_per_connection: int = 8
    tick_s: float = 0.5  # the timer that resends pushes and closes idle links
    # Cloud
    cloud_connect_timeout_s: float = 3.0
    cloud_timeout_s: float = 10.0  # one attempt of an ordinary call
    cloud_attempts: int = 3
    cloud_backoff_s: float = 0.2  # first retry waits up to this (full jitter), doubling
    cloud_backoff_max_s: float = 5.0
    cloud_max_connections: int = 32
    card_pay_deadline_s: float = 0.8  # then the card payment is decided offline
    # Card-pay batching (edge_agent/card_batch.py); the defaults' reasons are with the constants.
    card_pay_calls_in_flight: int = CARD_PAY_CALLS_IN_FLIGHT
    card_pay_batch_items: int = CARD_PAY_BATCH_ITEMS
    card_pay_overlap_after_s: float = CARD_PAY_OVERLAP_AFTER_S
    offline_upload_deadline_s: float = 2.0  # a terminal's OFFLINE_UPLOAD waits this for the cloud
    # Background work
    events_poll_s: float = 1.0  # PAY_RESULT reaches the screen within 2 s of the cloud
    keys_refresh_s: float = 60.0
    unknown_terminal_refresh_s: float = 10.0  # at most one key refresh this often for an unknown tid
    status_report_s: float = 30.0
    upload_interval_s: float = 2.0
    blacklist_poll_s: float = 30.0
    params_poll_s: float = 60.0  # each terminal's PARAMS asked again this often (and after a stale LOGIN)
    ack_report_s: float = 5.0  # blacklist acks not yet reported to the cloud are retried this often
    failure_backoff_max_s: float = 30.0
    offline_limits: OfflineLimits = field(default_factory=OfflineLimits)

    def __post_init__(self) -> None:
        for name in ("agent_id", "agent_secret", "cloud_url"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} is required")
        if self.event_loop not in LOOP_CHOICES:
            raise ValueError(f"event_loop must be one of {', '.join(LOOP_CHOICES)}")
        if not 1 <= self.max_connections <= 1_000_000:
            raise ValueError("max_connections must be positive")
        if self.card_pay_deadline_s <= 0 or self.card_pay_deadline_s >= 1.0:
            raise ValueError("card_pay_deadline_s must be in (0, 1): protocol.md answers within 1 s")
        if not 1 <= self.card_pay_calls_in_flight <= self.cloud_max_connections:
            raise ValueError("card_pay_calls_in_flight must be 1 .. cloud_max_connections")
        if not 0 <= self.card_pay_overlap_after_s < self.card_pay_deadline_s:
            raise ValueError("card_pay_overlap_after_s must be 0 .. card_pay_deadline_s")
        if not 1 <= self.card_pay_batch_items <= 100:
            raise ValueError("card_pay_batch_items must be 1 .. 100 (the cloud's pay-batch limit)")

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "edge-agent.sqlite3"

    def with_changes(self, **changes: Any) -> "AgentConfig":
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "AgentConfig":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        clean = dict(values)
        if "offline_limits" in clean:
            clean["offline_limits"] = OfflineLimits.from_dict(dict(clean["offline_limits"]))
        return cls(**clean)


def load_config(path: str | Path) -> AgentConfig:
    """Read ``path``: TOML when it ends in .toml, JSON otherwise."""
    path = Path(path)
    raw = path.read_bytes()
    values = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else json.loads(raw)
    if not isinstance(values, dict):
        raise ValueError("the config file must hold an object")
    return AgentConfig.from_dict(values)
