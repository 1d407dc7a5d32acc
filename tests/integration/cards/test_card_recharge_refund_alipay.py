"""An Alipay recharge paid after the card was cancelled, end to end through the sandbox's Alipay: the
refund (out_request_no "RF<recharge_id>") is booked only once Alipay confirms it. One Alipay fails
after accepting it is no longer listed and, by Alipay's rule, is sent again under the same number;
one Alipay refuses is sent again by the next run. Never refunded twice, nothing reaches the closed
account, and the settlement totals move with the bookings only."""
from __future__ import annotations

import json
from typing import Iterator

import httpx
import pytest

from chalicelib.container import Container
from chalicelib.services.card_container import card_services
from chalicelib.store.card_recharges import REFUNDED, REFUNDING, recharge_account
from chalicelib.store.models import LedgerEntryModel
from chalicelib.store.settlement_totals import read_totals
from recharge_stack import alipay_merchant, pay_in_sandbox, started_sandbox
from recharge_stack import http, receiver, stack  # noqa: F401  (fixtures)
from sandbox.alipay import make_accounts_section
from sandbox.server import Sandbox
from tests.support.card_world import card_snapshot
from tests.support.ledger_invariants import check_card_ledger

CARD, START_FEN, RECHARGE_FEN = "75000001", 1_000, 4_000
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@pytest.fixture(scope="module")
def section() -> dict:
    return make_accounts_section()


@pytest.fixture(scope="module")
def sandbox(section: dict) -> Iterator[Sandbox]:
    box = started_sandbox({"alipay": section}, "sandbox.alipay")
    yield box
    box.stop()


@pytest.fixture
def merchant(stack: Container, section: dict) -> str:
    return alipay_merchant(stack, section, CARD, START_FEN)


def _paid_after_cancel(http, stack: Container, merchant_id: str, sandbox: Sandbox, receiver,  # type: ignore[no-untyped-def]
                       refund_outcome: str) -> tuple[str, dict]:
    """Start, cancel the card at the counter, plan the refund's outcome, pay and deliver the notification."""
    started = http.post(f"/cards/v1/alipay/{merchant_id}/recharge", headers={"Content-Type": "application/json"},
                        body=json.dumps({"card_no": CARD, "number": CARD, "amount_fen": RECHARGE_FEN}))
    assert started.status_code == 201, started.body
    answer = json.loads(started.body)
    card_services(stack).admin.cancel(merchant_id, CARD)
    closed_card = card_snapshot(merchant_id, [CARD])
    planned = httpx.post(f"{sandbox.ctx.base_url}/sandbox/refunds",
                         json={"outcome": refund_outcome, "count": 1, "wallet": "alipay"})
    assert planned.status_code == 200, planned.text
    body = pay_in_sandbox(sandbox, receiver, "/sandbox/scan", {"qr": answer["qr"], "wallet": "alipay"})
    notified = http.post(f"/cards/notify/{merchant_id}/alipay", headers=FORM, body=body)
    assert (notified.status_code, notified.body) == (200, b"success")
    return answer["recharge_id"], closed_card


def _sandbox_refunds(sandbox: Sandbox, recharge_id: str) -> list[tuple[str, int, str]]:
    trades = [t for t in httpx.get(f"{sandbox.ctx.base_url}/sandbox/trades").json() if t["out_trade_no"] == recharge_id]
    assert len(trades) == 1
    return [(r["out_refund_no"], r["amount_fen"], r["status"]) for r in trades[0]["refunds"]]


def _entries(recharge_id: str) -> dict[str, int]:
    return {e.kind: int(e.amount_fen) for e in LedgerEntryModel.query(recharge_account(recharge_id),
                                                                        consistent_read=True)}


def _refund_totals(merchant_id: str, recharge_id: str) -> dict[str, int]:
    """The settlement totals' amounts of the recharge-refund kinds, over the days of the recharge's entries."""
    days = {e.business_date for e in LedgerEntryModel.query(recharge_account(recharge_id), consistent_read=True)}
    found: dict[str, int] = {}
    for day in days:
        for _, counters in read_totals(merchant_id, day):
            for name, value in counters.items():
                for kind in ("RECHARGE_UNCREDITED", "RECHARGE_REFUND"):
                    if f"|{kind}|" in name and name.endswith("amount_fen") and value:
                        found[kind] = found.get(kind, 0) + value
    return found


def _assert_refunded_once(sandbox: Sandbox, merchant_id: str, recharge_id: str, closed_card: dict) -> None:
    assert _sandbox_refunds(sandbox, recharge_id) == [(f"RF{recharge_id}", RECHARGE_FEN, "SUCCESS")]
    assert _entries(recharge_id) == {"RECHARGE_UNCREDITED": RECHARGE_FEN, "RECHARGE_REFUND": -RECHARGE_FEN}
    assert _refund_totals(merchant_id, recharge_id) == {"RECHARGE_UNCREDITED": RECHARGE_FEN,
                                                        "RECHARGE_REFUND": -RECHARGE_FEN}
    assert card_snapshot(merchant_id, [CARD]) == closed_card
    totals = check_card_ledger(merchant_id)
    assert (totals.balances_fen, totals.by_kind["RECHARGE"]) == (0, START_FEN)


def test_a_refund_alipay_fails_after_accepting_is_sent_again_under_the_same_number(http, stack, merchant, sandbox,
                                                                                 receiver):
    recharge_id, closed_card = _paid_after_cancel(http, stack, merchant, sandbox, receiver, "processing")
    services = card_services(stack)
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund) == (REFUNDING, "PENDING")  # fund_change N: not confirmed
    assert _sandbox_refunds(sandbox, recharge_id) == [(f"RF{recharge_id}", RECHARGE_FEN, "PROCESSING")]
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 1, "failed": 0, "errors": 0}  # listed, not done
    assert _entries(recharge_id) == {"RECHARGE_UNCREDITED": RECHARGE_FEN}
    assert _refund_totals(merchant, recharge_id) == {"RECHARGE_UNCREDITED": RECHARGE_FEN}
    finished = httpx.post(f"{sandbox.ctx.base_url}/sandbox/refunds/finish",
                          json={"out_refund_no": f"RF{recharge_id}", "status": "FAILED"})
    assert finished.status_code == 200, finished.text
    # No longer listed at Alipay: sent again under the same out_request_no, which refunds at once now.
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 0}
    assert services.recharges.get(recharge_id).status == REFUNDED
    for _ in range(2):  # re-runs book nothing more
        assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}
        assert services.online.refund_uncredited(recharge_id) == REFUNDED
    _assert_refunded_once(sandbox, merchant, recharge_id, closed_card)


def test_a_refund_alipay_refuses_is_sent_again_by_the_next_run(http, stack, merchant, sandbox, receiver):
    recharge_id, closed_card = _paid_after_cancel(http, stack, merchant, sandbox, receiver, "fail")
    services = card_services(stack)
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_attempts) == (REFUNDING, "PENDING", 1)
    assert recharge.refund_error.startswith("FAIL ACQ.SELLER_BALANCE_NOT_ENOUGH")
    assert _sandbox_refunds(sandbox, recharge_id) == []
    assert _entries(recharge_id) == {"RECHARGE_UNCREDITED": RECHARGE_FEN}
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 0}
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}
    _assert_refunded_once(sandbox, merchant, recharge_id, closed_card)
