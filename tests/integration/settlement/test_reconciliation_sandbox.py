"""A day paid and refunded through the real channels and the sandbox, settled, then reconciled against the
sandbox's WeChat text bill, Alipay zipped GBK bill and the bank's settlement file: nothing on the clean day,
then every kind of difference injected into the sandbox's bills (or our ledger) is found."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from chalicelib.channels.base import ScanPayRequest
from chalicelib.domain.clock import BEIJING, business_date
from chalicelib.domain.ids import new_order_id
from chalicelib.domain.orders import Order, OrderKind, OrderStatus
from chalicelib.jobs.settlement import reconciliation_service, settlement_service
from chalicelib.store.settlement import ReconciliationStore
from tests.functional.settlement.ledger_support import paid_order
from tests.integration.settlement.recon_support import DAY, SUB_MCH, SUB_SELLER, Stack

WECHAT_CODE, ALIPAY_CODE = "134567890123451234", "281234567890121234"
_txn = itertools.count(100_000)  # apart from ledger_support's txns on the same terminals


def scan_pay(stack: Stack, world, amount: int, code: str) -> str:  # type: ignore[no-untyped-def]
    terminal = stack.container.directory.terminal(world.terminal_id)
    answer = stack.container.order_service.scan_pay(terminal, next(_txn), amount, code)
    assert answer["status"] == "PAID", answer
    return answer["order_id"]


def reconcile(stack: Stack, day):  # type: ignore[no-untyped-def]
    """Run as at 10:00 the next day (the sandbox publishes a day's bills once it is over), then come back
    to the day, where the test goes on injecting differences. One clock for us and the sandbox."""
    back_to = stack.clock.now()
    next_morning = datetime.combine(day + timedelta(days=1), datetime.min.time().replace(hour=10), BEIJING)
    stack.clock.advance(next_morning.timestamp() - back_to)
    try:
        return reconciliation_service(stack.container, log_line=lambda line: None, window_s=0).run(
            day, [stack.direct.merchant_id, stack.bank.merchant_id])
    finally:
        stack.clock.advance(back_to - stack.clock.now())


def found(report) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    return sorted((d["merchant_id"], d["source"], d["kind"], d["ref"]) for d in report.differences)


def sandbox_trade(stack: Stack, out_trade_no: str, platform: str):  # type: ignore[no-untyped-def]
    return next(t for t in stack.sandbox.ctx.book.all() if t.out_trade_no == out_trade_no and t.platform == platform)


def test_a_clean_day_then_every_injected_difference(stack):
    day = business_date(stack.clock.now())
    assert day == DAY  # a fixed past day: the sandbox serves its bills whatever the real date
    container, direct, bank = stack.container, stack.direct, stack.bank
    refunds = container.refunds
    d_wechat = scan_pay(stack, direct, 1250, WECHAT_CODE)
    d_fee = scan_pay(stack, direct, 999, WECHAT_CODE)
    d_alipay = scan_pay(stack, direct, 2500, ALIPAY_CODE)
    assert refunds.refund(direct.merchant_id, d_alipay, 500, 1)["status"] == "REFUNDED"
    b_wechat = scan_pay(stack, bank, 1584, WECHAT_CODE)
    scan_pay(stack, bank, 84, ALIPAY_CODE)
    assert refunds.refund(bank.merchant_id, b_wechat, 300, 1)["status"] == "REFUNDED"
    settled = settlement_service(container, log_line=lambda line: None).run(day, [direct.merchant_id, bank.merchant_id])
    assert len(settled.written) == 2

    clean = reconcile(stack, day)

    assert (found(clean), clean.unavailable, clean.carried) == ([], [], 0)
    assert clean.matched == 7  # 5 payments and 2 refunds, each found on both sides
    assert ReconciliationStore().of_day(day) == []  # this module's own tables: nothing recorded at all

    # --- inject one of each kind ---------------------------------------------------------------
    wechat, _ = container.channels.for_merchant(direct.merchant_id, "wechat")
    now = stack.clock.now()
    not_ours = new_order_id(now)
    assert wechat.scan_pay(ScanPayRequest(not_ours, 777, "not through us", WECHAT_CODE)).ok  # MISSING_OURS
    unbooked = Order(new_order_id(now), direct.merchant_id, direct.terminal_id, direct.agent_id,
                     next(_txn), 600, OrderKind.QR, OrderStatus.CREATED, now, now + 300)
    assert container.orders.create_once(unbooked, None, f"txn#{direct.terminal_id}#{unbooked.txn}", {}, "t")
    assert wechat.scan_pay(ScanPayRequest(unbooked.order_id, 600, "paid, never booked", WECHAT_CODE)).ok  # STATUS
    phantom = paid_order(container, direct, 444, now, "alipay")  # MISSING_THEIRS: the platform never saw it
    sandbox_trade(stack, d_wechat, "wechat_v2").amount_fen = 1205  # AMOUNT_DIFFERS
    sandbox_trade(stack, d_fee, "wechat_v2").extra["fee_rate_ppm"] = 10_000  # FEE_DIFFERS: 9.99 fen, not 5.994
    bank_platform = stack.sandbox.ctx.platforms["bank"]
    bank_platform.tamper[("wechat", SUB_MCH)] = {"fee_fen": 9, "net_fen": 1584 - 300 - 9}  # bank FEE_DIFFERS
    bank_platform.tamper[("alipay", SUB_SELLER)] = {"gross_fen": 85, "net_fen": 85 - 1}  # bank AMOUNT_DIFFERS

    injected = reconcile(stack, day)
    assert injected.unavailable == []

    assert found(injected) == sorted([
        (direct.merchant_id, "wechat", "MISSING_OURS", not_ours),
        (direct.merchant_id, "wechat", "STATUS_DIFFERS", unbooked.order_id),
        (direct.merchant_id, "alipay", "MISSING_THEIRS", phantom.order_id),
        (direct.merchant_id, "wechat", "AMOUNT_DIFFERS", d_wechat),
        (direct.merchant_id, "wechat", "FEE_DIFFERS", d_fee),
        (bank.merchant_id, "bank", "FEE_DIFFERS", f"wechat:{SUB_MCH}"),
        (bank.merchant_id, "bank", "AMOUNT_DIFFERS", f"alipay:{SUB_SELLER}"),
    ])
    status = next(d for d in injected.differences if d["kind"] == "STATUS_DIFFERS")
    assert status["note"] == "our order is CREATED"
    stored = {(item.kind, item.ref) for item in ReconciliationStore().of_day(day)}
    assert stored == {(kind, ref) for _, _, kind, ref in found(injected)}

    # --- a bill that cannot be had: nothing is matched for that merchant, nothing is replaced -------
    stack.sandbox.faults.add("/wxpay/pay/downloadbill", "error", 1)
    retry = reconcile(stack, day)
    assert len(retry.unavailable) == 1 and ":wechat: downloadbill" in retry.unavailable[0]
    assert {(item.kind, item.ref) for item in ReconciliationStore().of_day(day)} == stored

    # --- the differences are put right: the re-run replaces the findings -------------------------
    bank_platform.tamper.clear()
    sandbox_trade(stack, d_wechat, "wechat_v2").amount_fen = 1250
    sandbox_trade(stack, d_fee, "wechat_v2").extra["fee_rate_ppm"] = 6000
    fixed = reconcile(stack, day)
    assert {d["kind"] for d in fixed.differences} == {"MISSING_OURS", "STATUS_DIFFERS", "MISSING_THEIRS"}
    assert len(ReconciliationStore().of_day(day)) == 3


def test_a_day_not_yet_published_is_unavailable_not_empty(stack):
    today = business_date(stack.clock.now())
    report = reconciliation_service(stack.container, log_line=lambda line: None).run(
        today, [stack.bank.merchant_id])  # the sandbox publishes today's Alipay bill and bank file tomorrow
    assert any(entry.startswith("bank:") for entry in report.unavailable)
    assert any(entry.startswith(f"{stack.bank.merchant_id}:alipay") for entry in report.unavailable)
