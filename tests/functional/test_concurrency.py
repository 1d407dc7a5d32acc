"""Racing paths on one order against the serialised emulator: notifications, queries, expiry, cancel.

Whatever wins, a payment is booked exactly once and never both booked and closed.
"""
from __future__ import annotations

import threading

from chalicelib.store.directory import TerminalInfo
from tests.support.state import ledger_of_order


def _terminal(world) -> TerminalInfo:  # type: ignore[no-untyped-def]
    return TerminalInfo(world.terminal_id, world.agent_id, world.merchant_id, world.site_id, True)


def run_together(*jobs) -> list:  # type: ignore[no-untyped-def]
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def runner(index: int, job) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            results[index] = job()
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            results[index] = error

    threads = [threading.Thread(target=runner, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_twelve_notifications_and_queries_at_once_book_once(container, world, fake_channels) -> None:
    created = container.order_service.create_qr_order(_terminal(world), 1, 4321, "wechat")
    order_id = created["order_id"]
    channel = fake_channels.by_wallet["wechat"]
    channel.pay(order_id)
    headers, body = channel.notification(order_id)
    jobs = [lambda: container.notifications.handle("wechat_v2", world.merchant_id, headers, body)] * 8
    jobs += [lambda: container.order_service.query(_terminal(world), 1)] * 4
    results = run_together(*jobs)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(r.status == 200 for r in results[:8])
    assert [(e["kind"], e["amount_fen"]) for e in ledger_of_order(order_id)] == [("QR_PAYMENT", 4321)]
    assert container.orders.get(order_id).order.status.value == "PAID"


def test_cancel_racing_a_payment_never_closes_a_paid_order(container, world, fake_channels) -> None:
    channel = fake_channels.by_wallet["alipay"]
    for txn in range(10, 16):
        created = container.order_service.create_qr_order(_terminal(world), txn, 100 + txn, "alipay")
        order_id = created["order_id"]
        channel.pay(order_id)  # paid at the platform; notification and cancel race
        headers, body = channel.notification(order_id)
        results = run_together(
            lambda: container.notifications.handle("alipay", world.merchant_id, headers, body),
            lambda: container.order_service.cancel(_terminal(world), txn),
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        assert container.orders.get(order_id).order.status.value == "PAID"
        assert [e["amount_fen"] for e in ledger_of_order(order_id)] == [100 + txn]


def test_same_txn_created_from_six_threads_is_one_order(container, world) -> None:
    results = run_together(*[lambda: container.order_service.create_qr_order(_terminal(world), 77, 900, None)] * 6)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r["order_id"] for r in results}) == 1
