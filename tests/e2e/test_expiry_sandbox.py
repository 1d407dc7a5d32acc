"""Expiry and late payments against the sandbox platform with the real channels.

The expiry job runs in a Container of its own whose clock is moved past the orders' expiry (five
minutes: within every platform's timestamp tolerance).
"""
from __future__ import annotations

import time

import httpx
import pytest

from chalicelib.container import Container
from chalicelib.domain.clock import FixedClock
from devstack.stack import LocalStack
from tests.e2e.conftest import eventually, order_status, signed_post
from tests.support.state import ledger_of_order


# These orders belong to an agent of their own: the job below runs with a clock 301 s ahead and
# stamps its events with it, which would move the demo agent's event-feed cursor into the future.
EXPIRY_AGENT = ("e2e-expiry-edge", "e2e-expiry-secret")
EXPIRY_TERMINAL = "E2E-X1"


@pytest.fixture(scope="module", autouse=True)
def expiry_agent(stack: LocalStack) -> None:
    from chalicelib.store.registry import Registry
    from devstack import demo

    registry = Registry(stack.container.sealer, time.time())
    registry.put_edge_agent(EXPIRY_AGENT[0], demo.SITE_ID, demo.MERCHANT_ID, EXPIRY_AGENT[1])
    registry.put_terminal(EXPIRY_TERMINAL, EXPIRY_AGENT[0], demo.MERCHANT_ID, demo.SITE_ID, "k")


def later(stack: LocalStack) -> Container:
    """The expiry job's container, 301 s after now (call it after creating the orders)."""
    return Container(stack.container.settings, FixedClock(time.time() + 301))


def create(stack: LocalStack, txn_offset: int, wallet: str | None, amount: int = 321) -> dict:
    txn = int(time.time() * 1000) % 1_000_000_000 + txn_offset
    payload = {"terminal_id": EXPIRY_TERMINAL, "txn": txn, "amount_fen": amount} | ({"wallet": wallet} if wallet else {})
    answer = signed_post(stack, "/edge/v1/orders/qr", payload, agent=EXPIRY_AGENT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def sandbox_trade(stack: LocalStack, out_trade_no: str) -> list[dict]:
    return [t for t in httpx.get(f"{stack.sandbox.ctx.base_url}/sandbox/trades").json()
            if t["out_trade_no"] == out_trade_no]


@pytest.mark.parametrize("wallet", ["wechat", "alipay"])
def test_unpaid_wallet_order_is_closed_at_the_platform_and_here(stack: LocalStack, wallet: str) -> None:
    order = create(stack, 11 if wallet == "wechat" else 12, wallet)
    report = later(stack).expiry.run()
    assert order["order_id"] in report.closed
    assert stack.container.orders.get(order["order_id"]).order.status.value == "CLOSED"
    paid = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": wallet})
    if wallet == "wechat":
        assert [t["status"] for t in sandbox_trade(stack, order["order_id"])] == ["CLOSED"]
        assert paid.status_code == 409  # closed at the platform: cannot be paid any more
        assert ledger_of_order(order["order_id"]) == []
        return
    # Alipay has no trade for a QR nobody scanned, so there is nothing to close: the QR stays payable
    # until its time_expire (our expires_at; this test's job clock runs ahead of the platform's).
    # A payment then is late: booked and refunded automatically, never lost.
    assert paid.status_code == 200
    def booked() -> list:
        return sorted((e["kind"], e["amount_fen"]) for e in ledger_of_order(order["order_id"]))

    eventually(lambda: len(booked()) >= 2, 15, "the late payment's refund")
    entries = booked()
    assert entries == [("LATE_PAYMENT", 321), ("LATE_REFUND", -321)]
    assert order_status(stack, order["order_id"]) == "CLOSED"
    assert sum(r["amount_fen"] for r in sandbox_trade(stack, order["order_id"])[0]["refunds"]) == 321


def test_paid_then_expiry_and_notification_race_books_once(stack: LocalStack) -> None:
    order = create(stack, 13, "wechat")
    httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": "wechat"})
    report = later(stack).expiry.run()  # races the notification: whichever books first, the other finds it booked
    assert order["order_id"] in report.paid or stack.container.orders.get(order["order_id"]).order.status.value == "PAID"
    assert stack.sandbox.ctx.notifier.wait_idle(10)
    assert [(e["kind"], e["amount_fen"]) for e in ledger_of_order(order["order_id"])] == [("QR_PAYMENT", 321)]


def test_aggregated_order_paid_in_both_wallets_refunds_the_second_at_the_platform(stack: LocalStack) -> None:
    order = create(stack, 14, None, amount=777)
    first = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": "wechat"})
    assert first.status_code == 200
    # The same QR, opened in Alipay before the WeChat payment closed it for new wallets... which it
    # does: a paid order can no longer be opened, so the second wallet is refused up front.
    second = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": "alipay"})
    assert second.status_code == 404
    eventually(lambda: order_status(stack, order["order_id"]) == "PAID", 10, "the WeChat notification")
    assert [(e["kind"], e["wallet"]) for e in ledger_of_order(order["order_id"])] == [("QR_PAYMENT", "wechat")]


def test_both_wallets_opened_then_both_paid_refunds_the_late_one(stack: LocalStack) -> None:
    order = create(stack, 15, None, amount=888)
    pay_page = f"{stack.api_url}/pay/{order['order_id']}"
    from sandbox.platform import WALLET_USER_AGENTS

    codes = {}
    for wallet in ("wechat", "alipay"):
        opened = httpx.get(pay_page, headers={"User-Agent": WALLET_USER_AGENTS[wallet]})
        assert opened.status_code == 302
        codes[wallet] = opened.headers["Location"]
    for wallet in ("wechat", "alipay"):
        answer = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": codes[wallet], "wallet": wallet})
        assert answer.status_code == 200, answer.text
    def booked() -> list:
        return sorted((e["kind"], e["wallet"], e["amount_fen"]) for e in ledger_of_order(order["order_id"]))

    eventually(lambda: len(booked()) == 3, 15, "both payments and the late refund")
    kinds = booked()
    assert kinds == [("LATE_PAYMENT", "alipay", 888), ("LATE_REFUND", "alipay", -888), ("QR_PAYMENT", "wechat", 888)]
    alipay_trade = sandbox_trade(stack, order["order_id"])
    refunded = [t for t in alipay_trade if t["platform"] == "alipay"]
    assert refunded and sum(r["amount_fen"] for r in refunded[0]["refunds"]) == 888
