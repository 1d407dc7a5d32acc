"""Merchant refunds through the real channels and the sandbox, when the platform does not finish them at
once: WeChat keeps a refund PROCESSING, or accepts it and then fails it (CHANGE). Nothing is booked until
the platform confirms; a failed refund gives its held amount back."""
from __future__ import annotations

import itertools
import json
import urllib.request

from chalicelib.channels.base import ChannelState, TradeStatus
from chalicelib.services.refunds import out_refund_no
from tests.integration.settlement.recon_support import Stack
from tests.support.state import ledger_of_order

WECHAT_CODE, ALIPAY_CODE = "134567890123451234", "281234567890121234"
_txn = itertools.count(300_000)


def scan_pay(stack: Stack, world, amount: int, code: str) -> str:  # type: ignore[no-untyped-def]
    terminal = stack.container.directory.terminal(world.terminal_id)
    answer = stack.container.order_service.scan_pay(terminal, next(_txn), amount, code)
    assert answer["status"] == "PAID", answer
    return answer["order_id"]


def control(stack: Stack, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{stack.sandbox.ctx.base_url}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - the local sandbox
        return json.loads(answer.read())


def money(stack: Stack, order_id: str) -> tuple:
    stored = stack.container.orders.get(order_id)
    assert stored is not None
    return (stored.order.status.value, stored.order.refunded_fen, stored.refund_pending_fen,
            sorted((e["entry_id"], e["amount_fen"]) for e in ledger_of_order(order_id)))


def sandbox_refund_status(stack: Stack, refund_no: str) -> str:
    return next(r.status for t in stack.sandbox.ctx.book.all() for r in t.refunds if r.out_refund_no == refund_no)


def test_a_processing_wechat_refund_is_booked_when_the_platform_finishes_it(stack):
    merchant = stack.direct.merchant_id
    order_id = scan_pay(stack, stack.direct, 1000, WECHAT_CODE)
    refunds = stack.container.refunds
    refund_no = out_refund_no(order_id, 1)
    control(stack, "/sandbox/refunds", {"outcome": "processing", "count": 1})

    first = refunds.refund(merchant, order_id, 400, 1)
    asked = refunds.status(merchant, order_id, 1)

    assert (first["status"], asked["status"]) == ("PENDING", "PENDING")
    assert money(stack, order_id) == ("PAID", 0, 400, [("payment", 1000)])  # held, not booked
    assert sandbox_refund_status(stack, refund_no) == "PROCESSING"

    assert control(stack, "/sandbox/refunds/finish", {"out_refund_no": refund_no, "status": "SUCCESS"})["ok"]
    assert refunds.status(merchant, order_id, 1)["status"] == "REFUNDED"
    assert refunds.refund(merchant, order_id, 400, 1)["status"] == "REFUNDED"  # a repeat books nothing more
    assert money(stack, order_id) == ("PARTIALLY_REFUNDED", 400, 0, [("payment", 1000), (f"refund#{refund_no}", -400)])


def test_a_wechat_refund_the_platform_fails_releases_the_amount(stack):
    merchant = stack.direct.merchant_id
    order_id = scan_pay(stack, stack.direct, 800, WECHAT_CODE)
    refunds = stack.container.refunds
    control(stack, "/sandbox/refunds", {"outcome": "processing", "count": 1})
    assert refunds.refund(merchant, order_id, 800, 1)["status"] == "PENDING"
    refund_no = out_refund_no(order_id, 1)

    assert control(stack, "/sandbox/refunds/finish", {"out_refund_no": refund_no, "status": "FAILED"})["ok"]
    failed = refunds.status(merchant, order_id, 1)

    assert (failed["status"], failed["code"]) == ("FAILED", "CHANGE")
    assert money(stack, order_id) == ("PAID", 0, 0, [("payment", 800)])
    # Accepted and failed at once ("fail"): the first answer already says FAILED.
    control(stack, "/sandbox/refunds", {"outcome": "fail", "count": 1})
    assert refunds.refund(merchant, order_id, 800, 2)["status"] == "FAILED"
    assert money(stack, order_id) == ("PAID", 0, 0, [("payment", 800)])
    # The amount is free again: a third attempt that the platform completes books once.
    assert refunds.refund(merchant, order_id, 800, 3)["status"] == "REFUNDED"
    assert money(stack, order_id) == ("REFUNDED", 800, 0, [("payment", 800),
                                                          (f"refund#{out_refund_no(order_id, 3)}", -800)])


def test_alipay_and_wechat_answer_refund_queries(stack):
    merchant = stack.direct.merchant_id
    alipay_order = scan_pay(stack, stack.direct, 600, ALIPAY_CODE)
    assert stack.container.refunds.refund(merchant, alipay_order, 100, 1)["status"] == "REFUNDED"
    alipay, _ = stack.container.channels.for_merchant(merchant, "alipay")  # type: ignore[misc]
    wechat, _ = stack.container.channels.for_merchant(merchant, "wechat")  # type: ignore[misc]

    done = alipay.query_refund(alipay_order, out_refund_no(alipay_order, 1))
    unknown = alipay.query_refund(alipay_order, out_refund_no(alipay_order, 2))
    wechat_unknown = wechat.query_refund(alipay_order, "R-NEVER-SENT")

    assert (done.state, done.trade_status, done.amount_fen) == (ChannelState.SUCCESS, TradeStatus.REFUNDED, 100)
    assert (unknown.state, unknown.trade_status) == (ChannelState.FAIL, TradeStatus.NOT_FOUND)
    assert (wechat_unknown.state, wechat_unknown.trade_status) == (ChannelState.FAIL, TradeStatus.NOT_FOUND)
