"""Merchant refunds: one transaction per refund, idempotent by (order, request_no), nothing changed on bad input."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

import pytest

from chalicelib.channels.base import ChannelState, RefundRequest
from chalicelib.domain.errors import Conflict, InvalidAmount, InvalidRequest, NotFound
from chalicelib.domain.ids import new_order_id
from chalicelib.domain.orders import Order, OrderKind, OrderStatus
from chalicelib.services.refunds import out_refund_no
from tests.functional.settlement.ledger_support import at, paid_order
from tests.support.fake_channel import FakeChannel
from tests.support.state import dedupe_keys, ledger_of_order
from tests.support.world import seed_world

DAY = date(2026, 4, 2)


@pytest.fixture
def world(container):  # type: ignore[no-untyped-def]
    return seed_world(container, scheme=2)


def state(container, order_id: str) -> tuple:  # type: ignore[no-untyped-def]
    stored = container.orders.get(order_id)
    return (stored.order.status.value, stored.order.refunded_fen,
            [(e["entry_id"], e["amount_fen"], e["kind"]) for e in ledger_of_order(order_id)],
            dedupe_keys(f"refund#R{order_id[1:]}"), dedupe_keys(f"refundreq#R{order_id[1:]}"))


def test_a_partial_then_the_rest(container, world, refunds, fake_channels):
    order = paid_order(container, world, 1000, at(DAY, 9))
    first, second = out_refund_no(order.order_id, 1), out_refund_no(order.order_id, 2)

    assert refunds.refund(world.merchant_id, order.order_id, 300, 1)["status"] == "REFUNDED"
    assert state(container, order.order_id)[:2] == ("PARTIALLY_REFUNDED", 300)
    assert refunds.refund(world.merchant_id, order.order_id, 700, 2)["status"] == "REFUNDED"

    assert state(container, order.order_id) == (
        "REFUNDED", 1000,
        [("payment", 1000, "QR_PAYMENT"), (f"refund#{first}", -300, "REFUND"), (f"refund#{second}", -700, "REFUND")],
        [f"refund#{first}", f"refund#{second}"], [f"refundreq#{first}", f"refundreq#{second}"])
    sent = fake_channels.by_wallet["wechat"].refunds
    assert (sent[first].refund_fen, sent[second].refund_fen, sent[first].total_fen) == (300, 700, 1000)
    assert len(first) == 30 and first.startswith("R") and first.endswith("M001")


def test_a_retry_refunds_once_and_a_changed_retry_is_refused(container, world, refunds, fake_channels):
    order = paid_order(container, world, 1000, at(DAY, 9))
    refunds.refund(world.merchant_id, order.order_id, 400, 1)
    after_first = state(container, order.order_id)
    calls = len(fake_channels.by_wallet["wechat"].calls)

    assert refunds.refund(world.merchant_id, order.order_id, 400, 1)["status"] == "REFUNDED"
    with pytest.raises(Conflict):
        refunds.refund(world.merchant_id, order.order_id, 500, 1)

    assert state(container, order.order_id) == after_first
    assert len(fake_channels.by_wallet["wechat"].calls) == calls  # the platform was not asked again


@pytest.mark.parametrize("merchant, amount, request_no, error", [
    ("own", 1001, 1, InvalidAmount),       # more than was paid
    ("own", 0, 1, InvalidAmount),
    ("own", 10.5, 1, InvalidAmount),
    ("own", 100, 0, InvalidRequest),       # request numbers start at 1
    ("own", 100, True, InvalidRequest),
    ("other", 100, 1, NotFound),           # another merchant's order
])
def test_bad_refunds_change_nothing(container, world, refunds, fake_channels, merchant, amount, request_no, error):
    order = paid_order(container, world, 1000, at(DAY, 9))
    before = state(container, order.order_id)
    merchant_id = world.merchant_id if merchant == "own" else "M-SOMEONE-ELSE"

    with pytest.raises(error):
        refunds.refund(merchant_id, order.order_id, amount, request_no)

    assert state(container, order.order_id) == before
    assert fake_channels.by_wallet["wechat"].refunds == {}


def test_nothing_is_left_to_refund_of_a_refunded_or_an_unpaid_order(container, world, refunds):
    order = paid_order(container, world, 1000, at(DAY, 9))
    refunds.refund(world.merchant_id, order.order_id, 1000, 1)
    unpaid = Order(new_order_id(at(DAY, 10)), world.merchant_id, world.terminal_id, world.agent_id, 777, 500,
                   OrderKind.QR, OrderStatus.CREATED, at(DAY, 10), at(DAY, 10) + 300)
    assert container.orders.create_once(unpaid, None, f"txn#{world.terminal_id}#777", {}, "test")
    before = state(container, order.order_id), state(container, unpaid.order_id)

    with pytest.raises(InvalidAmount):
        refunds.refund(world.merchant_id, order.order_id, 1, 2)
    with pytest.raises(InvalidAmount):
        refunds.refund(world.merchant_id, unpaid.order_id, 1, 1)

    assert (state(container, order.order_id), state(container, unpaid.order_id)) == before


def test_no_answer_then_a_retry_books_once_and_a_refusal_books_nothing(container, world, refunds, fake_channels):
    order = paid_order(container, world, 1000, at(DAY, 9))
    channel = fake_channels.by_wallet["wechat"]
    channel.next_answer["refund"] = ChannelState.UNKNOWN
    assert refunds.refund(world.merchant_id, order.order_id, 250, 1)["status"] == "PENDING"
    assert state(container, order.order_id)[:3] == ("PAID", 0, [("payment", 1000, "QR_PAYMENT")])

    assert refunds.refund(world.merchant_id, order.order_id, 250, 1)["status"] == "REFUNDED"
    channel.next_answer["refund"] = ChannelState.FAIL
    refused = refunds.refund(world.merchant_id, order.order_id, 100, 2)

    assert refused["status"] == "FAILED" and refused["code"] == "FORCED"
    assert state(container, order.order_id)[:2] == ("PARTIALLY_REFUNDED", 250)
    assert [e["amount_fen"] for e in ledger_of_order(order.order_id)] == [1000, -250]


@dataclass
class InterleavingChannel(FakeChannel):
    """Lets another refund of the same order complete while this one is at the platform."""

    during_refund: Callable[[], None] | None = None

    def refund(self, request: RefundRequest):  # type: ignore[no-untyped-def]
        hook, self.during_refund = self.during_refund, None
        if hook:
            hook()
        return super().refund(request)


def test_two_refunds_racing_on_one_order_both_book(container, world, refunds, fake_channels):
    order = paid_order(container, world, 1000, at(DAY, 9))
    channel = InterleavingChannel("wechat", name="fake_wechat")
    fake_channels.by_wallet["wechat"] = channel
    channel.during_refund = lambda: refunds.refund(world.merchant_id, order.order_id, 600, 2)

    assert refunds.refund(world.merchant_id, order.order_id, 400, 1)["status"] == "REFUNDED"

    status, refunded, entries, *_ = state(container, order.order_id)
    assert (status, refunded) == ("REFUNDED", 1000)
    assert sorted(e[1] for e in entries) == [-600, -400, 1000]
