"""A WeChat (JSAPI) recharge paid after the card was cancelled, end to end through the sandbox's
WeChat Pay v2: the notification is acknowledged, the money is refunded at the platform exactly once
(out_refund_no derived from the recharge, so a retry after a 502 or a repeated notification never
refunds twice), booked only once WeChat confirms it (a refund still PROCESSING stays REFUNDING; one
WeChat fails after accepting it waits for a person), and the recharge shows REFUNDED. Nothing reaches
the closed account."""
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
from recharge_stack import pay_in_sandbox, started_sandbox, wechat_merchant
from recharge_stack import http, receiver, stack  # noqa: F401  (fixtures)
from sandbox import wechat_v2 as platform
from sandbox.server import Sandbox
from tests.support.card_world import card_snapshot
from tests.support.ledger_invariants import check_card_ledger

APPID, MCH_ID = "wx5555555555555556", "1900000556"
CARD, START_FEN, RECHARGE_FEN = "74000001", 1_000, 5_000
HOLDER_OPENID = platform.openid(APPID, "sunqi")
XML = {"Content-Type": "text/xml"}


@pytest.fixture(scope="module")
def merchant_account() -> dict:
    return platform.make_merchant(APPID)


@pytest.fixture(scope="module")
def sandbox(merchant_account: dict) -> Iterator[Sandbox]:
    accounts = {platform.NAME: platform.make_accounts_section({MCH_ID: merchant_account})}
    box = started_sandbox(accounts, "sandbox.wechat_v2")
    yield box
    box.stop()


@pytest.fixture
def merchant(stack: Container, merchant_account: dict) -> str:
    return wechat_merchant(stack, merchant_account, APPID, MCH_ID, CARD, START_FEN, HOLDER_OPENID)


def _start_and_cancel(http, stack: Container, merchant_id: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    started = http.post(f"/cards/v1/wechat/{merchant_id}/recharge", headers={"Content-Type": "application/json"},
                        body=json.dumps({"openid": HOLDER_OPENID, "amount_fen": RECHARGE_FEN}))
    assert started.status_code == 201, started.body
    answer = json.loads(started.body)
    card_services(stack).admin.cancel(merchant_id, CARD)  # at the counter, while the holder pays
    return answer["recharge_id"], answer["jsapi"]["package"].removeprefix("prepay_id=")


def _notify(http, merchant_id: str, body: bytes) -> bytes:  # type: ignore[no-untyped-def]
    answer = http.post(f"/cards/notify/{merchant_id}", headers=XML, body=body)
    assert answer.status_code == 200
    return answer.body


def _sandbox_refunds(sandbox: Sandbox, recharge_id: str) -> list[tuple[str, int]]:
    trade = sandbox.ctx.book.get(platform.NAME, MCH_ID, recharge_id)
    assert trade is not None and trade.status in ("SUCCESS", "REFUND")
    return [(r.out_refund_no, r.amount_fen) for r in trade.refunds]


def _assert_untouched_and_balanced(merchant_id: str, recharge_id: str, closed_card: dict) -> None:
    assert card_snapshot(merchant_id, [CARD]) == closed_card
    totals = check_card_ledger(merchant_id)
    assert (totals.balances_fen, totals.by_kind["RECHARGE"]) == (0, START_FEN)  # cash paid out at cancel
    entries = {e.kind: int(e.amount_fen) for e in LedgerEntryModel.query(recharge_account(recharge_id))}
    assert entries == {"RECHARGE_UNCREDITED": RECHARGE_FEN, "RECHARGE_REFUND": -RECHARGE_FEN}
    assert _refund_totals(merchant_id, recharge_id) == {"RECHARGE_UNCREDITED": (RECHARGE_FEN, 1),
                                                         "RECHARGE_REFUND": (-RECHARGE_FEN, 1)}


def _refund_totals(merchant_id: str, recharge_id: str) -> dict[str, tuple[int, int]]:
    """The settlement totals' (amount, count) per recharge-refund kind, over the days of the recharge's
    entries (this merchant has no other recharge refunds)."""
    days = {e.business_date for e in LedgerEntryModel.query(recharge_account(recharge_id), consistent_read=True)}
    found: dict[str, tuple[int, int]] = {}
    for day in days:
        for _, counters in read_totals(merchant_id, day):
            for name, value in counters.items():
                kind = next((k for k in ("RECHARGE_UNCREDITED", "RECHARGE_REFUND") if f"|{k}|" in name), None)
                if kind and value:
                    amount, count = found.get(kind, (0, 0))
                    found[kind] = (amount + value, count) if name.endswith("amount_fen") else (amount, count + value)
    return found


def _plan_refunds(sandbox: Sandbox, outcome: str) -> None:
    answer = httpx.post(f"{sandbox.ctx.base_url}/sandbox/refunds", json={"outcome": outcome, "count": 1})
    assert answer.status_code == 200, answer.text


def _finish_refund(sandbox: Sandbox, out_refund_no: str, status: str) -> None:
    answer = httpx.post(f"{sandbox.ctx.base_url}/sandbox/refunds/finish",
                        json={"out_refund_no": out_refund_no, "status": status})
    assert answer.status_code == 200, answer.text


def test_paid_for_a_cancelled_card_is_refunded_once_at_wechat(http, stack, merchant, sandbox, receiver):
    recharge_id, prepay_id = _start_and_cancel(http, stack, merchant)
    closed_card = card_snapshot(merchant, [CARD])
    body = pay_in_sandbox(sandbox, receiver, "/sandbox/jsapi/pay", {"prepay_id": prepay_id})
    assert b"SUCCESS" in _notify(http, merchant, body)
    recharge = card_services(stack).recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.out_refund_no) == (REFUNDED, None, f"RF{recharge_id}")
    assert recharge.refund_id and recharge.trade_no
    assert _sandbox_refunds(sandbox, recharge_id) == [(f"RF{recharge_id}", RECHARGE_FEN)]
    for _ in range(2):  # WeChat repeats its notification: acknowledged, nothing refunded again
        assert b"SUCCESS" in _notify(http, merchant, body)
    assert card_services(stack).online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}
    assert _sandbox_refunds(sandbox, recharge_id) == [(f"RF{recharge_id}", RECHARGE_FEN)]
    _assert_untouched_and_balanced(merchant, recharge_id, closed_card)


def test_a_refund_that_met_a_502_is_asked_again_with_the_same_number(http, stack, merchant, sandbox, receiver):
    recharge_id, prepay_id = _start_and_cancel(http, stack, merchant)
    closed_card = card_snapshot(merchant, [CARD])
    sandbox.faults.add("/wxpay/secapi/pay/refund", "error", 1)
    body = pay_in_sandbox(sandbox, receiver, "/sandbox/jsapi/pay", {"prepay_id": prepay_id})
    assert b"SUCCESS" in _notify(http, merchant, body)
    services = card_services(stack)
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_attempts) == (REFUNDING, "PENDING", 1)
    assert _sandbox_refunds(sandbox, recharge_id) == []
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 0}
    assert services.online.refund_uncredited(recharge_id) == REFUNDED  # once more by hand: nothing more
    assert _sandbox_refunds(sandbox, recharge_id) == [(f"RF{recharge_id}", RECHARGE_FEN)]
    assert services.recharges.get(recharge_id).status == REFUNDED
    _assert_untouched_and_balanced(merchant, recharge_id, closed_card)


def test_a_processing_refund_is_booked_when_wechat_finishes_it(http, stack, merchant, sandbox, receiver):
    recharge_id, prepay_id = _start_and_cancel(http, stack, merchant)
    closed_card = card_snapshot(merchant, [CARD])
    _plan_refunds(sandbox, "processing")
    body = pay_in_sandbox(sandbox, receiver, "/sandbox/jsapi/pay", {"prepay_id": prepay_id})
    assert b"SUCCESS" in _notify(http, merchant, body)
    services = card_services(stack)
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_error) == (REFUNDING, "PENDING", "UNKNOWN PROCESSING OK")
    assert _sandbox_refunds(sandbox, recharge_id) == [(f"RF{recharge_id}", RECHARGE_FEN)]  # accepted at WeChat
    uncredited = {"RECHARGE_UNCREDITED": (RECHARGE_FEN, 1)}
    assert _refund_totals(merchant, recharge_id) == uncredited  # received, not refunded yet
    for _ in range(2):  # still processing: asked about, nothing booked, nothing sent again
        assert services.online.retry_refunds() == {"refunded": 0, "pending": 1, "failed": 0, "errors": 0}
    assert _refund_totals(merchant, recharge_id) == uncredited
    assert services.recharges.get(recharge_id).status == REFUNDING
    _finish_refund(sandbox, f"RF{recharge_id}", "SUCCESS")
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 0}
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund) == (REFUNDED, None) and recharge.refund_id
    assert b"SUCCESS" in _notify(http, merchant, body)  # a late repeat of the notification: nothing more
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}
    assert _sandbox_refunds(sandbox, recharge_id) == [(f"RF{recharge_id}", RECHARGE_FEN)]
    _assert_untouched_and_balanced(merchant, recharge_id, closed_card)


def test_a_refund_wechat_fails_after_accepting_it_waits_for_a_person(http, stack, merchant, sandbox, receiver):
    recharge_id, prepay_id = _start_and_cancel(http, stack, merchant)
    closed_card = card_snapshot(merchant, [CARD])
    _plan_refunds(sandbox, "processing")
    body = pay_in_sandbox(sandbox, receiver, "/sandbox/jsapi/pay", {"prepay_id": prepay_id})
    assert b"SUCCESS" in _notify(http, merchant, body)
    _finish_refund(sandbox, f"RF{recharge_id}", "FAILED")  # refundquery answers CHANGE
    services = card_services(stack)
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 1, "errors": 0}
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_error) == (REFUNDING, "FAILED", "FAIL CHANGE OK")
    assert recharge_id in list(services.recharges.refunds("FAILED"))  # (the session's tables hold others')
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}  # left to the person
    assert _sandbox_refunds(sandbox, recharge_id) == [(f"RF{recharge_id}", RECHARGE_FEN)]  # one refund, never another
    assert card_snapshot(merchant, [CARD]) == closed_card
    assert check_card_ledger(merchant).balances_fen == 0
    entries = {e.kind: int(e.amount_fen) for e in LedgerEntryModel.query(recharge_account(recharge_id))}
    assert entries == {"RECHARGE_UNCREDITED": RECHARGE_FEN}  # nothing booked as refunded
    assert _refund_totals(merchant, recharge_id) == {"RECHARGE_UNCREDITED": (RECHARGE_FEN, 1)}
