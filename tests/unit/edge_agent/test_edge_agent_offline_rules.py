from __future__ import annotations

import pytest

from edge_agent.config import OfflineLimits
from edge_agent.offline import beijing_day, decide_offline, yuan

LIMITS = OfflineLimits(max_payment_fen=2000, max_card_day_fen=5000, max_card_day_count=3, max_terminal_pending=10)


@pytest.mark.parametrize(("amount", "blacklisted", "count", "total", "pending", "code"), [
    (1250, False, 0, 0, 0, "OK"),
    (2000, False, 2, 3000, 9, "OK"),  # exactly at every limit
    (0, False, 0, 0, 0, "ERR009"),
    (-5, True, 0, 0, 0, "ERR009"),  # a bad amount is reported before anything else
    (100, True, 0, 0, 0, "ERR008"),  # blacklisted: never accepted offline
    (2001, False, 0, 0, 0, "ERR012"),  # per payment
    (1000, False, 1, 4001, 0, "ERR012"),  # per card per day, amount
    (100, False, 3, 300, 0, "ERR012"),  # per card per day, count
    (100, False, 0, 0, 10, "ERR012"),  # the terminal's backlog
])
def test_offline_decision(amount: int, blacklisted: bool, count: int, total: int, pending: int, code: str) -> None:
    decision = decide_offline(amount, blacklisted, LIMITS, count, total, pending)
    assert decision.code == code and decision.accepted is (code == "OK")


def test_zero_limit_forbids_offline() -> None:
    assert decide_offline(1, False, OfflineLimits(max_payment_fen=0), 0, 0, 0).code == "ERR012"


def test_yuan_and_business_day() -> None:
    assert [yuan(v) for v in (0, 5, 1250, 100000, -30)] == ["0.00", "0.05", "12.50", "1000.00", "-0.30"]
    assert beijing_day(1_795_000_000) == "2026-11-18"  # 15:46 in Beijing
    assert beijing_day(1_795_017_600 - 1) == "2026-11-18" and beijing_day(1_795_017_600) == "2026-11-19"
