"""The local stack's scheduled jobs (devstack/stack.py, what `make run` runs as its stand-in for
EventBridge): the expiry, the refund sweep and the online-recharge refunds, each in a loop of its
own that survives a failed run and ends when the stack stops. Here against FakeChannel, with a
table prefix of its own, so the sweep sees only this module's refunds."""
from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import date
from typing import Iterator

import pytest

from chalicelib.channels.base import PaymentNotice
from chalicelib.config import Settings
from chalicelib.services.card_container import CardServices, install_card_services
from chalicelib.services.refunds import out_refund_no
from chalicelib.store.card_recharges import REFUNDED, REFUNDING, recharge_account
from chalicelib.store.connection import bind_models, create_tables
from chalicelib.store.models import LedgerEntryModel
from devstack.stack import LocalSchedule, LocalStack, run_schedule
from tests.e2e.conftest import eventually
from tests.functional.settlement.ledger_support import at, move_clock, paid_order
from tests.support.card_world import card_snapshot, issue_card
from tests.support.ledger_invariants import check_card_ledger
from tests.support.state import ledger_of_order
from tests.support.world import seed_world

SCHEDULES_PREFIX = "scanpay-test-schedules-"
DAY = date(2026, 11, 19)
CARD = "76000001"


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Iterator[Settings]:
    own = dataclasses.replace(settings, table_prefix=SCHEDULES_PREFIX)
    bind_models(own)
    create_tables()
    yield own
    bind_models(settings)


def test_a_schedule_runs_until_stopped_and_a_failed_run_does_not_end_it(caplog) -> None:  # type: ignore[no-untyped-def]
    stop, runs = threading.Event(), []

    def job() -> None:
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            raise ConnectionError("the emulator went away for a moment")
        if len(runs) == 3:
            stop.set()  # the stack stops during the third run: no fourth starts

    with caplog.at_level(logging.ERROR, logger="devstack"):
        assert run_schedule(LocalSchedule("some_job", 0.0, job), stop) == 3
    assert runs == [1, 2, 3]
    assert [r.getMessage() for r in caplog.records] == ["some_job run failed"]
    assert run_schedule(LocalSchedule("some_job", 0.0, job), stop) == 0  # stopped: never runs again


def test_the_local_stack_runs_the_refund_jobs_beside_the_expiry(container, clock, fake_channels) -> None:
    world = seed_world(container, scheme=2)
    services = CardServices(container)
    install_card_services(services)
    move_clock(clock, at(DAY, 9))
    # A merchant refund and a closed account's recharge refund, both accepted but still processing.
    order = paid_order(container, world, 1_000, at(DAY, 9))
    fake_channels.by_wallet["wechat"].next_refund_states = ["PROCESSING"]
    assert container.refunds.refund(world.merchant_id, order.order_id, 400, 1)["status"] == "PENDING"
    holder = services.holders.get(issue_card(services, world.merchant_id, CARD, cash_fen=500))
    recharge = services.online.open_recharge(world.merchant_id, holder, 3_000, "alipay", None)
    services.admin.cancel(world.merchant_id, CARD)
    closed_card = card_snapshot(world.merchant_id, [CARD])
    fake_channels.by_wallet["alipay"].next_refund_states = ["PROCESSING"]
    notice = PaymentNotice(recharge.recharge_id, f"TA{recharge.recharge_id}", 3_000, at(DAY, 9), "MCH1", True)
    assert services.online.apply(world.merchant_id, notice, "alipay") == REFUNDING
    # The platforms finish both; only the stack's loops are left to notice.
    fake_channels.by_wallet["wechat"].refund_states[out_refund_no(order.order_id, 1)] = "SUCCESS"
    fake_channels.by_wallet["alipay"].refund_states[f"RF{recharge.recharge_id}"] = "SUCCESS"

    stack = LocalStack(container=container, expiry_interval_s=0.05, refund_interval_s=0.05)
    assert [(s.name, s.interval_s) for s in stack.schedules()] == [
        ("expire_orders", 0.05), ("sweep_refunds", 0.05), ("refund_uncredited_recharges", 0.05)]
    assert (LocalStack().expiry_interval_s, LocalStack().refund_interval_s) == (60.0, 60.0)  # `make run`'s
    threads_before = set(threading.enumerate())  # another stack (tests/e2e) may run in this process
    stack.start_schedules()
    try:
        eventually(lambda: services.recharges.get(recharge.recharge_id).status == REFUNDED
                   and container.orders.get(order.order_id).order.refunded_fen == 400, 20, "the refunds booked")
    finally:
        stack.stop()
    assert [t.name for t in set(threading.enumerate()) - threads_before if t.name.endswith("-schedule")] == []

    assert sorted((e["entry_id"], e["amount_fen"]) for e in ledger_of_order(order.order_id)) == [
        ("payment", 1_000), (f"refund#{out_refund_no(order.order_id, 1)}", -400)]
    recharge_entries = sorted((e.kind, int(e.amount_fen)) for e in
                              LedgerEntryModel.query(recharge_account(recharge.recharge_id), consistent_read=True))
    assert recharge_entries == [("RECHARGE_REFUND", -3_000), ("RECHARGE_UNCREDITED", 3_000)]
    assert card_snapshot(world.merchant_id, [CARD]) == closed_card
    assert check_card_ledger(world.merchant_id).balances_fen == 0
    # However often the loops ran, each platform was asked for each refund once.
    refunds_sent = {wallet: [ref for name, ref in fake_channels.by_wallet[wallet].calls if name == "refund"]
                    for wallet in ("wechat", "alipay")}
    assert refunds_sent == {"wechat": [out_refund_no(order.order_id, 1)], "alipay": [f"RF{recharge.recharge_id}"]}
