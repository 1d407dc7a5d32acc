"""The refund sweep job with FakeChannel: open refund requests found through the sparse index (no Scan),
confirmed ones booked once, failed merchant refunds released, failed late refunds handed to a person,
processing ones left alone; a re-run books nothing twice. The module has its own tables, so the sweep
sees only this module's refunds."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import date
from typing import Iterator

import pytest

from chalicelib.channels.base import ChannelState
from chalicelib.config import Settings
from chalicelib.domain.orders import Wallet
from chalicelib.jobs.refunds import main, refund_sweep
from chalicelib.services.payments import MAX_LATE_REFUSALS, late_refund_no
from chalicelib.services.refund_sweep import RefundSweep
from chalicelib.services.refunds import out_refund_no
from chalicelib.store.connection import bind_models, create_tables, dynamodb_clients
from chalicelib.store.models import DedupeModel
from chalicelib.store.orders import PaymentBooking
from chalicelib.store.settlement_totals import read_totals
from devstack.call_counter import DynamoDBCallCounter
from tests.functional.settlement.ledger_support import at, move_clock, paid_order
from tests.support.state import ledger_of_order
from tests.support.world import seed_world

DAY = date(2026, 4, 7)
SWEEP_PREFIX = "scanpay-test-sweep-"


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Iterator[Settings]:
    own = dataclasses.replace(settings, table_prefix=SWEEP_PREFIX)
    bind_models(own)
    create_tables()
    yield own
    bind_models(settings)


@pytest.fixture
def world(container):  # type: ignore[no-untyped-def]
    assert list(container.refund_store.open_requests("pending")) == []  # each test leaves none behind
    return seed_world(container, scheme=2)


@pytest.fixture
def log_lines() -> list[dict]:
    return []


@pytest.fixture
def sweep(container, log_lines):  # type: ignore[no-untyped-def]
    return refund_sweep(container, log_lines.append)


def money(container, order_id: str) -> tuple:  # type: ignore[no-untyped-def]
    stored = container.orders.get(order_id)
    return (stored.order.status.value, stored.order.refunded_fen, stored.refund_pending_fen,
            sorted((e["entry_id"], e["amount_fen"], e["kind"]) for e in ledger_of_order(order_id)))


def day_totals(merchant_id: str, day: date) -> dict[str, int]:
    """Every counter of the merchant-day, summed over channels and shards, zeros left out."""
    summed: Counter[str] = Counter()
    for channel, counters in read_totals(merchant_id, day.isoformat()):
        summed.update({f"{channel}:{name}": value for name, value in counters.items()})
    return {name: value for name, value in summed.items() if value}


def refund_counters(totals: dict[str, int]) -> dict[str, int]:
    return {name: value for name, value in totals.items() if "refund" in name.lower()}


def request_queue(refund_no: str) -> str | None:
    return DedupeModel.get(f"refundreq#{refund_no}", consistent_read=True).refund_queue


def test_the_sweep_books_confirmed_releases_failed_and_leaves_processing_refunds(
        container, clock, world, sweep, fake_channels, log_lines):
    wechat = fake_channels.by_wallet["wechat"]
    move_clock(clock, at(DAY, 9))
    done, failed, slow = (paid_order(container, world, amount, at(DAY, 9)) for amount in (1000, 800, 600))
    wechat.next_refund_states = ["PROCESSING"] * 3
    for order, amount in ((done, 400), (failed, 800), (slow, 600)):
        assert container.refunds.refund(world.merchant_id, order.order_id, amount, 1)["status"] == "PENDING"
    before = day_totals(world.merchant_id, DAY)
    assert refund_counters(before) == {}  # held, nothing booked
    wechat.refund_states[out_refund_no(done.order_id, 1)] = "SUCCESS"
    wechat.refund_states[out_refund_no(failed.order_id, 1)] = "FAILED"
    move_clock(clock, at(DAY, 10))
    sent = Counter(call for call, _ in wechat.calls)
    counter = DynamoDBCallCounter({id(c): c for c in dynamodb_clients(container.settings)}.values())

    report = sweep.run()

    assert counter.calls["Scan"] == 0
    assert (container.settings.table_prefix + "dedupe", "refunds_open") in counter.queries
    assert (report.booked, report.released, report.pending) == (
        [out_refund_no(done.order_id, 1)], [out_refund_no(failed.order_id, 1)], [out_refund_no(slow.order_id, 1)])
    assert money(container, done.order_id) == ("PARTIALLY_REFUNDED", 400, 0, [
        ("payment", 1000, "QR_PAYMENT"), (f"refund#{out_refund_no(done.order_id, 1)}", -400, "REFUND")])
    assert money(container, failed.order_id) == ("PAID", 0, 0, [("payment", 800, "QR_PAYMENT")])
    assert money(container, slow.order_id) == ("PAID", 0, 600, [("payment", 600, "QR_PAYMENT")])
    assert refund_counters(day_totals(world.merchant_id, DAY)) == {
        "wechat_v2:S|wechat|refunds": 1, "wechat_v2:S|wechat|refunds_fen": 400}
    assert Counter(call for call, _ in wechat.calls) - sent == Counter(query_refund=3)  # asked, nothing re-sent
    assert [request_queue(out_refund_no(o.order_id, 1)) for o in (done, failed)] == [None, None]
    assert request_queue(out_refund_no(slow.order_id, 1)).startswith("pending#")
    events = [(line["event"], line.get("outcome")) for line in log_lines]
    assert sorted(events) == [("done", None), ("refund", "booked"), ("refund", "released")]
    assert log_lines[-1] == {"job": "sweep_refunds", "event": "done", "examined": 3, "booked": 1, "released": 1,
                             "flagged": 0, "pending": 1, "stale": 0, "errors": 0, "left": 0}

    # A re-run: the settled ones are off the index; the slow one is asked again and still pending.
    after = (money(container, done.order_id), money(container, failed.order_id), day_totals(world.merchant_id, DAY))
    again = sweep.run()
    assert (again.examined, again.booked, again.released, again.pending) == (
        1, [], [], [out_refund_no(slow.order_id, 1)])
    assert (money(container, done.order_id), money(container, failed.order_id),
            day_totals(world.merchant_id, DAY)) == after

    # The platform finishes the slow one days later: booked on that day; and the operator's repeat books nothing.
    wechat.refund_states[out_refund_no(slow.order_id, 1)] = "SUCCESS"
    move_clock(clock, at(DAY, 12) + 4 * 86400)
    assert sweep.run().booked == [out_refund_no(slow.order_id, 1)]
    assert container.refunds.status(world.merchant_id, slow.order_id, 1)["status"] == "REFUNDED"
    assert money(container, slow.order_id) == ("REFUNDED", 600, 0, [
        ("payment", 600, "QR_PAYMENT"), (f"refund#{out_refund_no(slow.order_id, 1)}", -600, "REFUND")])
    later = date.fromordinal(DAY.toordinal() + 4)
    assert refund_counters(day_totals(world.merchant_id, later)) == {
        "wechat_v2:S|wechat|refunds": 1, "wechat_v2:S|wechat|refunds_fen": 600}
    assert sweep.run().examined == 0


def test_a_refund_pending_for_days_is_reported_stale_and_kept(container, clock, world, sweep, fake_channels,
                                                               log_lines):
    wechat = fake_channels.by_wallet["wechat"]
    move_clock(clock, at(DAY, 9))
    order = paid_order(container, world, 500, at(DAY, 9))
    wechat.next_refund_states = ["PROCESSING"]
    assert container.refunds.refund(world.merchant_id, order.order_id, 500, 1)["status"] == "PENDING"
    move_clock(clock, at(DAY, 9) + 3 * 86400 + 60)

    report = sweep.run()

    refund_no = out_refund_no(order.order_id, 1)
    assert (report.pending, report.stale) == ([refund_no], [refund_no])
    [stale] = [line for line in log_lines if line["event"] == "stale"]
    assert (stale["out_refund_no"], stale["pending_s"]) == (refund_no, 3 * 86400 + 60)
    assert money(container, order.order_id) == ("PAID", 0, 500, [("payment", 500, "QR_PAYMENT")])
    # A run is bounded: beyond its limit the rest waits for the next run.
    bounded = RefundSweep(container.refund_store, container.orders, container.refunds, container.booker,
                          container.channels, container.clock, log_lines.append, max_per_run=0)
    assert bounded.run().summary() == {"examined": 0, "booked": 0, "released": 0, "flagged": 0,
                                       "pending": 0, "stale": 0, "errors": 0, "left": 1}
    wechat.refund_states[refund_no] = "SUCCESS"  # leave the module's queue empty for the next test
    assert sweep.run().booked == [refund_no]


def late_payment(container, world, order, fake_channels,  # type: ignore[no-untyped-def]
                 trade_no: str = "LATE0001") -> str:
    """The order's second payment, through Alipay, after it was paid with WeChat: booked as late and
    refunded automatically (PaymentBooker.book, as a notification does)."""
    booking = PaymentBooking(order.order_id, world.merchant_id, Wallet.ALIPAY, "alipay", trade_no, order.amount_fen,
                             container.clock.now())
    return container.booker.book(order, booking, fake_channels.by_wallet["alipay"], "refund")


def test_a_late_refund_is_booked_only_when_the_platform_confirms_it(container, clock, world, sweep, fake_channels):
    alipay = fake_channels.by_wallet["alipay"]
    move_clock(clock, at(DAY, 9))
    order = paid_order(container, world, 700, at(DAY, 9))
    alipay.next_refund_states = ["PROCESSING"]
    move_clock(clock, at(DAY, 11))

    assert late_payment(container, world, order, fake_channels) == "LATE_REFUND_PENDING"

    refund_no = late_refund_no(order.order_id, Wallet.ALIPAY, "LATE0001")
    assert money(container, order.order_id) == ("PAID", 0, 0, [
        ("late#alipay#LATE0001", 700, "LATE_PAYMENT"), ("payment", 700, "QR_PAYMENT")])
    assert container.orders.get(order.order_id).late_refund_pending
    assert sweep.run().pending == [refund_no]  # still processing: nothing booked
    assert len(ledger_of_order(order.order_id)) == 2
    # The notification is delivered again: nothing more is booked or sent.
    assert late_payment(container, world, order, fake_channels) == "DUPLICATE"
    assert list(alipay.refunds) == [refund_no]

    alipay.refund_states[refund_no] = "SUCCESS"
    move_clock(clock, at(DAY, 12))
    report = sweep.run()

    assert report.booked == [refund_no]
    assert money(container, order.order_id) == ("PAID", 0, 0, [
        ("late#alipay#LATE0001", 700, "LATE_PAYMENT"), ("lateref#alipay#LATE0001", -700, "LATE_REFUND"),
        ("payment", 700, "QR_PAYMENT")])
    assert not container.orders.get(order.order_id).late_refund_pending
    late_counters = {k: v for k, v in day_totals(world.merchant_id, DAY).items() if k.startswith("alipay:R|late")}
    assert late_counters == {"alipay:R|late|LATE_PAYMENT|alipay|count": 1,
                             "alipay:R|late|LATE_PAYMENT|alipay|amount_fen": 700,
                             "alipay:R|late|LATE_REFUND|alipay|count": 1,
                             "alipay:R|late|LATE_REFUND|alipay|amount_fen": -700}
    # Re-runs of the sweep and of the expiry job's retry book nothing twice.
    assert sweep.run().examined == 0
    container.expiry.run()
    assert len(ledger_of_order(order.order_id)) == 3
    assert [call for call, _ in alipay.calls].count("refund") == 1


def test_a_late_refund_the_platform_fails_waits_for_a_person(container, clock, world, sweep, fake_channels,
                                                              log_lines):
    alipay = fake_channels.by_wallet["alipay"]
    move_clock(clock, at(DAY, 9))
    order = paid_order(container, world, 900, at(DAY, 9))
    alipay.next_refund_states = ["PROCESSING"]
    assert late_payment(container, world, order, fake_channels, "LATE0002") == "LATE_REFUND_PENDING"
    refund_no = late_refund_no(order.order_id, Wallet.ALIPAY, "LATE0002")
    alipay.refund_states[refund_no] = "FAILED"

    report = sweep.run()

    assert report.flagged == [refund_no]
    stored = container.orders.get(order.order_id)
    assert (stored.late_refund_pending, money(container, order.order_id)) == (False, ("PAID", 0, 0, [
        ("late#alipay#LATE0002", 900, "LATE_PAYMENT"), ("payment", 900, "QR_PAYMENT")]))
    assert request_queue(refund_no) == "attention"
    assert sweep.attention() == [{"out_refund_no": refund_no, "order_id": order.order_id, "refund_fen": 900,
                                  "wallet": "alipay", "trade_no": "LATE0002", "code": "CHANGE"}]
    assert ("refund", "flagged") in [(line["event"], line.get("outcome")) for line in log_lines]
    calls = len(alipay.calls)
    assert sweep.run().examined == 0  # off the pending queue: the platform is not asked again
    assert len(alipay.calls) == calls
    assert len(ledger_of_order(order.order_id)) == 2


def test_a_refused_late_refund_is_sent_again_then_handed_to_a_person(container, clock, world, sweep, fake_channels):
    alipay = fake_channels.by_wallet["alipay"]
    move_clock(clock, at(DAY, 9))
    order = paid_order(container, world, 300, at(DAY, 9))
    alipay.next_answer["refund"] = ChannelState.FAIL  # e.g. the merchant's balance is short
    assert late_payment(container, world, order, fake_channels, "LATE0003") == "LATE_REFUND_PENDING"
    refund_no = late_refund_no(order.order_id, Wallet.ALIPAY, "LATE0003")
    assert container.refund_store.request(refund_no).refusals == 1

    # The next sweep sends it again under the same number; this time the platform takes and completes it.
    assert sweep.run().booked == [refund_no]
    assert sorted(e["kind"] for e in ledger_of_order(order.order_id)) == ["LATE_PAYMENT", "LATE_REFUND", "QR_PAYMENT"]

    # Another one the platform keeps refusing: after MAX_LATE_REFUSALS it waits for a person.
    other = paid_order(container, world, 200, at(DAY, 9))
    alipay.next_answer["refund"] = ChannelState.FAIL
    assert late_payment(container, world, other, fake_channels, "LATE0004") == "LATE_REFUND_PENDING"
    other_no = late_refund_no(other.order_id, Wallet.ALIPAY, "LATE0004")
    for _ in range(MAX_LATE_REFUSALS - 2):
        alipay.next_answer["refund"] = ChannelState.FAIL
        assert sweep.run().pending == [other_no]
    alipay.next_answer["refund"] = ChannelState.FAIL
    assert sweep.run().flagged == [other_no]
    flagged = container.refund_store.request(other_no)
    assert (flagged.state, flagged.refusals, flagged.code, flagged.queue) == (
        "refund_failed", MAX_LATE_REFUSALS, "FORCED", "attention")
    assert sorted(e["kind"] for e in ledger_of_order(other.order_id)) == ["LATE_PAYMENT", "QR_PAYMENT"]
    assert container.orders.get(other.order_id).late_refund_pending is False


def test_the_command_line_sweeps_and_lists_what_waits_for_a_person(container, clock, world, fake_channels, capsys):
    wechat = fake_channels.by_wallet["wechat"]
    move_clock(clock, at(DAY, 9))
    order = paid_order(container, world, 450, at(DAY, 9))
    wechat.next_refund_states = ["PROCESSING"]
    assert container.refunds.refund(world.merchant_id, order.order_id, 450, 1)["status"] == "PENDING"
    wechat.refund_states[out_refund_no(order.order_id, 1)] = "SUCCESS"

    assert main(["sweep"], container, log_to_stdout=False) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["booked"], summary["examined"]) == (1, 1)
    assert main(["sweep"], container, log_to_stdout=False) == 0  # a re-run: nothing left to do
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["examined"] == 0
    assert money(container, order.order_id)[:3] == ("REFUNDED", 450, 0)
    assert main(["attention"], container, log_to_stdout=False) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
    with pytest.raises(SystemExit):
        main(["sweep", "--day", "2026-04-07"], container, log_to_stdout=False)
