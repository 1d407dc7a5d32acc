"""The whole QR path over HTTP: the local stack of `make run` (API, sandbox, emulator) on free ports.

Signed edge API -> order; /sandbox/scan pays with each wallet (through the aggregated URL, which
the wallet opens with its User-Agent, and through a wallet's own QR); the sandbox's signed
notification reaches the real webhook; the order is PAID with exactly one ledger entry.
"""
from __future__ import annotations

import time

import httpx
import pytest

from devstack import demo
from devstack.stack import LocalStack
from tests.e2e.conftest import eventually, order_status, signed_post
from tests.support.state import ledger_of_order


def wait_paid(stack: LocalStack, txn: int) -> dict:
    """Reads the order directly, not via QUERY (which would ask the channel and book it itself):
    this proves the notification did the booking."""

    def paid() -> dict | None:
        answer = stack.container.dedupe.get(f"txn#T0001#{txn}")
        order = stack.container.orders.get(answer.ref) if answer else None
        if order and order.order.status.value == "PAID":
            return {"order_id": order.order.order_id, "wallet": order.order.wallet.value}
        return None

    return eventually(paid, 15, "the order's notification")


@pytest.mark.parametrize("wallet", ["wechat", "alipay"])
@pytest.mark.parametrize("own_qr", [False, True], ids=["aggregated", "wallet-qr"])
def test_qr_order_paid_in_sandbox_turns_paid_once(stack: LocalStack, wallet: str, own_qr: bool) -> None:
    txn = int(time.time() * 1000) % 2_000_000_000 + (1 if own_qr else 0) + (2 if wallet == "alipay" else 0)
    payload = {"terminal_id": "T0001", "txn": txn, "amount_fen": 1234} | ({"wallet": wallet} if own_qr else {})
    created = signed_post(stack, "/edge/v1/orders/qr", payload)
    assert created.status_code == 200, created.text
    order = created.json()
    if own_qr:
        assert not order["qr"].startswith(stack.api_url)
    else:
        assert order["qr"] == f"{stack.api_url}/pay/{order['order_id']}"
    paid = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": wallet}, timeout=20)
    assert paid.status_code == 200, paid.text
    assert paid.json()["amount_fen"] == 1234
    result = wait_paid(stack, txn)
    assert result == {"order_id": order["order_id"], "wallet": wallet}
    assert stack.sandbox.ctx.notifier.wait_idle(10)  # the webhook acknowledged every delivery
    entries = ledger_of_order(order["order_id"])
    assert [(e["kind"], e["amount_fen"], e["wallet"]) for e in entries] == [("QR_PAYMENT", 1234, wallet)]
    # The platform's retries and the terminal's QUERY change nothing more.
    query = signed_post(stack, "/edge/v1/orders/query", {"terminal_id": "T0001", "txn": txn}).json()
    assert query["status"] == "PAID"
    assert len(ledger_of_order(order["order_id"])) == 1


def test_the_same_qr_cannot_be_paid_twice(stack: LocalStack) -> None:
    txn = int(time.time() * 1000) % 2_000_000_000 + 7
    order = signed_post(stack, "/edge/v1/orders/qr", {"terminal_id": "T0001", "txn": txn, "amount_fen": 99,
                                                      "wallet": "wechat"}).json()
    first = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": "wechat"})
    second = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": "wechat"})
    assert first.status_code == 200 and second.status_code == 409
    wait_paid(stack, txn)
    assert [e["amount_fen"] for e in ledger_of_order(order["order_id"])] == [99]


def test_wrong_wallet_for_a_channel_qr(stack: LocalStack) -> None:
    txn = int(time.time() * 1000) % 2_000_000_000 + 9
    order = signed_post(stack, "/edge/v1/orders/qr", {"terminal_id": "T0001", "txn": txn, "amount_fen": 99,
                                                      "wallet": "alipay"}).json()
    answer = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": "wechat"})
    assert answer.status_code == 409 and answer.json()["error"] == "WRONG_WALLET"
    assert ledger_of_order(order["order_id"]) == []


def test_direct_merchant_on_wechat_pay_v3(stack: LocalStack) -> None:
    """Scheme 1: the merchant's own WeChat Pay v3 account (certificate mode) and its own Alipay app."""
    from sandbox import alipay as sandbox_alipay
    from sandbox import wechat_v3 as sandbox_v3
    from chalicelib.store.registry import ChannelAccount, Registry

    accounts = stack.sandbox.ctx.accounts
    mchid = next(iter(accounts["wechat_v3"]["merchants"]))
    v3 = sandbox_v3.channel_settings(accounts["wechat_v3"], mchid)
    ali = sandbox_alipay.channel_settings(accounts["alipay"], demo.DEMO_ALIPAY_APP_ID)
    registry = Registry(stack.container.sealer, time.time())
    registry.put_merchant("e2e-direct", demo.DEALER_ID, "直连商户", scheme=1, accounts=[
        ChannelAccount.sealing_secrets("wechat", "wechat_v3", v3),
        ChannelAccount.sealing_secrets("alipay", "alipay", ali)])
    registry.put_site("e2e-site", "e2e-direct", "site")
    registry.put_terminal("E2E-T1", demo.AGENT_ID, "e2e-direct", "e2e-site", "k")  # the demo agent serves it too
    stack.container.directory.clear_cache()
    for wallet, txn in (("wechat", 1), ("alipay", 2)):
        order = signed_post(stack, "/edge/v1/orders/qr", {"terminal_id": "E2E-T1", "txn": txn, "amount_fen": 505}).json()
        assert order["ok"], order
        paid = httpx.post(f"{stack.sandbox.ctx.base_url}/sandbox/scan", json={"qr": order["qr"], "wallet": wallet})
        assert paid.status_code == 200, paid.text
        assert paid.json()["platform"] == ("wechat_v3" if wallet == "wechat" else "alipay")
        eventually(lambda: order_status(stack, order["order_id"]) == "PAID", 15, "the v3/Alipay notification")
        assert [(e["kind"], e["amount_fen"]) for e in ledger_of_order(order["order_id"])] == [("QR_PAYMENT", 505)]
