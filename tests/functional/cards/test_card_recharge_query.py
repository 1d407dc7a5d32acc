"""A recharge whose payment notification was lost for good is found by the card job, which asks the
platform about it and books it through the notification's own path: once, whichever comes first.
Fake channels here (FakeChannel.pay marks a trade paid without notifying)."""
from __future__ import annotations

import pytest

from chalicelib.channels.base import ChannelState, TradeStatus
from chalicelib.jobs.cards import refund_uncredited_recharges
from chalicelib.services.card_container import CardServices
from chalicelib.services.card_recharge import QUERY_AFTER_S, QUERY_LOOKBACK_S
from chalicelib.store.card_models import CardRechargeModel
from tests.support.card_world import (card_snapshot, installed_services_with_card, post_alipay_notification,
                                      start_alipay_recharge)
from tests.support.ledger_invariants import check_card_ledger

CARD = "73100001"


@pytest.fixture
def services(container, world) -> CardServices:  # type: ignore[no-untyped-def]
    return installed_services_with_card(container, world.merchant_id, CARD)


def _start(http, world, amount: int = 3_000) -> str:  # type: ignore[no-untyped-def]
    return start_alipay_recharge(http, world.merchant_id, CARD, amount)


def _queries(fake_channels, recharge_id: str) -> int:  # type: ignore[no-untyped-def]
    return fake_channels.by_wallet["alipay"].calls.count(("query", recharge_id))


def _late_notification(http, fake_channels, world, recharge_id: str):  # type: ignore[no-untyped-def]
    return post_alipay_notification(http, fake_channels, world.merchant_id, recharge_id)


def _cash(world) -> int:  # type: ignore[no-untyped-def]
    return card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"]


def test_a_paid_recharge_without_notification_is_credited_once(http, world, services, fake_channels,
                                                               clock) -> None:
    recharge_id = _start(http, world)
    fake_channels.by_wallet["alipay"].pay(recharge_id)  # paid; the notification is lost for good
    clock.advance(QUERY_AFTER_S + 1)
    report = refund_uncredited_recharges.func(None)  # the scheduled entry point (the Lambda handler)
    assert report["queried"]["paid"] == 1 and report["queried"]["errors"] == 0
    assert _queries(fake_channels, recharge_id) == 1
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.trade_no, recharge.credited_card_no) == ("PAID", f"TA{recharge_id}", CARD)
    assert _cash(world) == 4_000
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 4_000
    assert CardRechargeModel.get(recharge_id, consistent_read=True).pending is None  # left the index
    after = card_snapshot(world.merchant_id, [CARD])

    # The notification arrives after all: acknowledged, nothing booked twice.
    answer = _late_notification(http, fake_channels, world, recharge_id)
    assert (answer.status_code, answer.body) == (200, b"ok")
    # A re-run: the recharge is no longer listed, the platform is not asked again.
    assert services.online.credit_unnotified()["paid"] == 0
    assert _queries(fake_channels, recharge_id) == 1
    assert card_snapshot(world.merchant_id, [CARD]) == after
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 4_000


def test_the_notification_first_then_the_job_books_nothing(http, world, services, fake_channels, clock) -> None:
    recharge_id = _start(http, world)
    fake_channels.by_wallet["alipay"].pay(recharge_id)
    assert _late_notification(http, fake_channels, world, recharge_id).status_code == 200
    after = card_snapshot(world.merchant_id, [CARD])
    clock.advance(QUERY_AFTER_S + 1)
    services.online.credit_unnotified()
    assert _queries(fake_channels, recharge_id) == 0  # booked: no longer listed
    # Even asked directly (the index lagging behind), the paid recharge is not booked again.
    assert services.online.query_recharge(recharge_id) == "unpaid"
    assert card_snapshot(world.merchant_id, [CARD]) == after
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 4_000


def test_an_unpaid_recharge_stays_created_and_is_asked_again(http, world, services, fake_channels, clock) -> None:
    recharge_id = _start(http, world)
    before = card_snapshot(world.merchant_id, [CARD])
    clock.advance(QUERY_AFTER_S + 1)
    services.online.credit_unnotified()
    fake_channels.by_wallet["alipay"].next_answer["query"] = ChannelState.UNKNOWN  # no answer this time
    services.online.credit_unnotified()
    services.online.credit_unnotified()
    assert _queries(fake_channels, recharge_id) == 3
    assert services.recharges.get(recharge_id).status == "CREATED"
    assert card_snapshot(world.merchant_id, [CARD]) == before
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 1_000  # only the counter's


def test_a_closed_trade_is_no_longer_asked_about(http, world, services, fake_channels, clock) -> None:
    recharge_id = _start(http, world)
    fake_channels.by_wallet["alipay"].trades[recharge_id].status = TradeStatus.CLOSED  # QR expired unpaid
    clock.advance(QUERY_AFTER_S + 1)
    assert services.online.credit_unnotified()["closed"] == 1
    services.online.credit_unnotified()
    assert _queries(fake_channels, recharge_id) == 1
    assert services.recharges.get(recharge_id).status == "CREATED"  # a recharge has no closed status
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 1_000


def test_young_and_old_recharges_are_not_asked_about(http, world, services, fake_channels, clock) -> None:
    recharge_id = _start(http, world)
    fake_channels.by_wallet["alipay"].pay(recharge_id)
    clock.advance(QUERY_AFTER_S - 1)  # its notification may still be on its way
    services.online.credit_unnotified()
    assert _queries(fake_channels, recharge_id) == 0
    clock.advance(QUERY_LOOKBACK_S)  # past the lookback: left alone
    services.online.credit_unnotified()
    assert _queries(fake_channels, recharge_id) == 0
    assert services.recharges.get(recharge_id).status == "CREATED"
    assert _cash(world) == 1_000


def test_a_paid_trade_with_another_amount_is_not_booked(http, world, services, fake_channels, clock) -> None:
    recharge_id = _start(http, world)
    channel = fake_channels.by_wallet["alipay"]
    channel.pay(recharge_id).amount_fen = 2_999  # the platform reports another amount: never booked
    before = card_snapshot(world.merchant_id, [CARD])
    clock.advance(QUERY_AFTER_S + 1)
    assert services.online.credit_unnotified()["errors"] == 1
    assert services.recharges.get(recharge_id).status == "CREATED"
    assert card_snapshot(world.merchant_id, [CARD]) == before
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 1_000
