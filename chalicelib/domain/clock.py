"""Time is injected: services take a Clock so tests and jobs can fix 'now'.

Business days are Asia/Shanghai dates, although Lambda runs in UTC.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Protocol

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # China has no DST; a fixed offset is exact.


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds."""


class SystemClock:
    def now(self) -> float:
        return time.time()


class FixedClock:
    """A clock for tests and re-runs; advance() moves it."""

    def __init__(self, start: float) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


Sleep = Callable[[float], None]


def business_date(unix_seconds: float) -> date:
    return datetime.fromtimestamp(unix_seconds, BEIJING).date()


def beijing_datetime(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, BEIJING)
