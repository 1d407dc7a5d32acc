"""An online recharge paid after its account was closed is refunded through the channel (once,
whatever repeats), booked only when the platform confirms it, recorded and visible; after a card
replacement the credit lands on the new card. Fake channels here; WeChat and Alipay end to end
through the sandbox in tests/integration/cards/."""
from __future__ import annotations

from collections import Counter

import pytest

from chalicelib.channels.base import ChannelState
from chalicelib.services.card_container import CardServices
from chalicelib.services.card_recharge import MAX_REFUND_ATTEMPTS, REFUND_FAILED
from chalicelib.store.card_recharges import recharge_account
from chalicelib.store.models import LedgerEntryModel
from chalicelib.store.settlement_totals import read_totals
from tests.support.card_world import (card_snapshot, installed_services_with_card, operator_for,
                                      post_alipay_notification, start_alipay_recharge)
from tests.support.ledger_invariants import check_card_ledger

CARD, NEW_CARD = "73000001", "73000002"


@pytest.fixture
def services(container, world) -> CardServices:  # type: ignore[no-untyped-def]
    return installed_services_with_card(container, world.merchant_id, CARD)


def _start(http, world, amount: int = 3_000) -> str:  # type: ignore[no-untyped-def]
    return start_alipay_recharge(http, world.merchant_id, CARD, amount)


def _notify(http, fake_channels, world, recharge_id: str):  # type: ignore[no-untyped-def]
    fake_channels.by_wallet["alipay"].pay(recharge_id)
    return post_alipay_notification(http, fake_channels, world.merchant_id, recharge_id)


def _refund_calls(fake_channels) -> list[str]:  # type: ignore[no-untyped-def]
    return [ref for name, ref in fake_channels.by_wallet["alipay"].calls if name == "refund"]


def _recharge_ledger(recharge_id: str) -> list[tuple[str, str, int]]:
    return sorted((e.entry_id, e.kind, int(e.amount_fen))
                  for e in LedgerEntryModel.query(recharge_account(recharge_id), consistent_read=True))


def _recharge_totals(merchant_id: str, recharge_id: str) -> dict[str, int]:
    """The merchant's settlement totals of recharge refunds (every channel and shard summed, zeros
    left out) over the business days of the recharge's ledger entries: what its bookings added."""
    days = {e.business_date for e in LedgerEntryModel.query(recharge_account(recharge_id), consistent_read=True)}
    summed: Counter[str] = Counter()
    for day in days:
        for channel, counters in read_totals(merchant_id, day):
            summed.update({f"{channel}:{name}": value for name, value in counters.items() if "|RECHARGE_" in name
                           and ("UNCREDITED" in name or "REFUND" in name)})
    return {name: value for name, value in summed.items() if value}


RECEIVED_TOTALS = {"alipay:R|other|RECHARGE_UNCREDITED|alipay|amount_fen": 3_000,
                   "alipay:R|other|RECHARGE_UNCREDITED|alipay|count": 1}
REFUNDED_TOTALS = {"alipay:R|other|RECHARGE_REFUND|alipay|amount_fen": -3_000,
                   "alipay:R|other|RECHARGE_REFUND|alipay|count": 1}


def _uncredited_only(recharge_id: str) -> bool:
    return _recharge_ledger(recharge_id) == [("uncredited", "RECHARGE_UNCREDITED", 3_000)]


def test_paid_after_the_card_was_cancelled_is_refunded_once(http, world, services, fake_channels) -> None:
    recharge_id = _start(http, world)
    services.admin.cancel(world.merchant_id, CARD)
    before = card_snapshot(world.merchant_id, [CARD])
    answer = _notify(http, fake_channels, world, recharge_id)
    assert (answer.status_code, answer.body) == (200, b"ok")  # recorded: the platform may stop notifying
    assert _notify(http, fake_channels, world, recharge_id).status_code == 200  # a repeat
    assert _refund_calls(fake_channels) == [f"RF{recharge_id}"]
    refund = fake_channels.by_wallet["alipay"].refunds[f"RF{recharge_id}"]
    assert (refund.out_trade_no, refund.total_fen, refund.refund_fen) == (recharge_id, 3_000, 3_000)
    assert card_snapshot(world.merchant_id, [CARD]) == before  # nothing reached the closed account
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 1_000  # only the counter's
    assert _recharge_ledger(recharge_id) == [("refund", "RECHARGE_REFUND", -3_000),
                                             ("uncredited", "RECHARGE_UNCREDITED", 3_000)]
    status, body = operator_for(http, services, world.merchant_id).call("GET", f"/cards/v1/recharges/{recharge_id}")
    assert (status, body["status"], body["credited_card_no"]) == (200, "REFUNDED", None)
    assert (body["refund"]["out_refund_no"], body["refund"]["state"], body["refund"]["refund_id"]) == (
        f"RF{recharge_id}", None, f"RFRF{recharge_id}")
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}
    assert _refund_calls(fake_channels) == [f"RF{recharge_id}"]


def test_an_unanswered_refund_stays_visible_and_the_job_retries_it(http, world, services, fake_channels) -> None:
    recharge_id = _start(http, world)
    services.admin.cancel(world.merchant_id, CARD)
    fake_channels.by_wallet["alipay"].next_answer["refund"] = ChannelState.UNKNOWN  # a timeout
    assert _notify(http, fake_channels, world, recharge_id).status_code == 200
    op = operator_for(http, services, world.merchant_id)
    body = op.call("GET", f"/cards/v1/recharges/{recharge_id}")[1]
    assert (body["status"], body["refund"]["state"], body["refund"]["attempts"]) == ("REFUNDING", "PENDING", 1)
    assert body["refund"]["error"].startswith("UNKNOWN")
    assert list(services.recharges.refunds()) == [recharge_id]
    assert _recharge_ledger(recharge_id) == [("uncredited", "RECHARGE_UNCREDITED", 3_000)]
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 0}
    assert _refund_calls(fake_channels) == [f"RF{recharge_id}"] * 2  # unknown to the platform: sent again
    assert op.call("GET", f"/cards/v1/recharges/{recharge_id}")[1]["status"] == "REFUNDED"
    assert list(services.recharges.refunds()) == []
    assert sum(a for _, _, a in _recharge_ledger(recharge_id)) == 0


def test_a_refund_refused_again_and_again_waits_for_a_person(http, world, services, fake_channels) -> None:
    recharge_id = _start(http, world)
    services.admin.cancel(world.merchant_id, CARD)
    channel = fake_channels.by_wallet["alipay"]
    channel.next_answer["refund"] = ChannelState.FAIL
    _notify(http, fake_channels, world, recharge_id)
    for _ in range(MAX_REFUND_ATTEMPTS - 1):
        channel.next_answer["refund"] = ChannelState.FAIL
        services.online.retry_refunds()
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_attempts) == ("REFUNDING", "FAILED", MAX_REFUND_ATTEMPTS)
    assert recharge_id not in list(services.recharges.refunds())
    assert recharge_id in list(services.recharges.refunds("FAILED"))  # (the session's tables may hold others')
    assert services.online.refund_uncredited(recharge_id) == "REFUNDED"  # a person asks again: it goes through
    assert sum(a for _, _, a in _recharge_ledger(recharge_id)) == 0


def test_after_a_replacement_the_credit_lands_on_the_new_card(http, world, services, fake_channels) -> None:
    recharge_id = _start(http, world)
    services.admin.report_lost(world.merchant_id, CARD)
    services.admin.replace(world.merchant_id, CARD, NEW_CARD)
    assert _notify(http, fake_channels, world, recharge_id).status_code == 200
    cards = card_snapshot(world.merchant_id, [CARD, NEW_CARD])["cards"]
    assert (cards[CARD]["cash_fen"], cards[NEW_CARD]["cash_fen"]) == (0, 4_000)
    assert _refund_calls(fake_channels) == []
    body = operator_for(http, services, world.merchant_id).call("GET", f"/cards/v1/recharges/{recharge_id}")[1]
    assert (body["status"], body["card_no"], body["credited_card_no"], body["refund"]) == ("PAID", CARD, NEW_CARD, None)
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 4_000


def test_another_merchants_recharge_is_not_found(http, world, services, fake_channels, container) -> None:
    from tests.support.world import seed_world

    recharge_id = _start(http, world)
    other = seed_world(container)
    status, body = operator_for(http, services, other.merchant_id).call("GET", f"/cards/v1/recharges/{recharge_id}")
    assert (status, body["code"]) == (404, "NOT_FOUND")
    assert operator_for(http, services, world.merchant_id).call("GET", "/cards/v1/recharges/nope")[0] == 404


# --- booked only when the platform confirms ---------------------------------------------------


def test_an_accepted_refund_is_booked_only_once_the_platform_confirms_it(http, world, services,
                                                                         fake_channels) -> None:
    recharge_id = _start(http, world)
    services.admin.cancel(world.merchant_id, CARD)
    before = card_snapshot(world.merchant_id, [CARD])
    channel = fake_channels.by_wallet["alipay"]
    channel.next_refund_states.append("PROCESSING")  # accepted, not finished
    assert _notify(http, fake_channels, world, recharge_id).status_code == 200
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_attempts) == ("REFUNDING", "PENDING", 1)
    assert _uncredited_only(recharge_id)
    received = _recharge_totals(world.merchant_id, recharge_id)
    assert received == RECEIVED_TOTALS  # the money received, nothing refunded
    # Processing for longer than the attempt limit: never given up on, never booked, never sent twice.
    for _ in range(MAX_REFUND_ATTEMPTS + 1):
        assert services.online.retry_refunds() == {"refunded": 0, "pending": 1, "failed": 0, "errors": 0}
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_error) == ("REFUNDING", "PENDING", "UNKNOWN PROCESSING")
    assert _uncredited_only(recharge_id) and _recharge_totals(world.merchant_id, recharge_id) == received
    assert _refund_calls(fake_channels) == [f"RF{recharge_id}"]  # only asked about since
    channel.refund_states[f"RF{recharge_id}"] = "SUCCESS"  # the platform finishes it
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 0}
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_id) == ("REFUNDED", None, f"RFRF{recharge_id}")
    assert _recharge_ledger(recharge_id) == [("refund", "RECHARGE_REFUND", -3_000),
                                             ("uncredited", "RECHARGE_UNCREDITED", 3_000)]
    refunded = _recharge_totals(world.merchant_id, recharge_id)
    assert refunded == RECEIVED_TOTALS | REFUNDED_TOTALS
    for _ in range(2):  # re-runs, and a person asking again: nothing more
        assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}
        assert services.online.refund_uncredited(recharge_id) == "REFUNDED"
    assert _recharge_totals(world.merchant_id, recharge_id) == refunded
    assert _refund_calls(fake_channels) == [f"RF{recharge_id}"]
    assert card_snapshot(world.merchant_id, [CARD]) == before
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 1_000


def test_a_refund_the_platform_fails_after_accepting_it_goes_to_a_person(http, world, services,
                                                                         fake_channels) -> None:
    recharge_id = _start(http, world)
    services.admin.cancel(world.merchant_id, CARD)
    channel = fake_channels.by_wallet["alipay"]
    channel.next_refund_states.append("PROCESSING")
    _notify(http, fake_channels, world, recharge_id)
    received = _recharge_totals(world.merchant_id, recharge_id)
    channel.refund_states[f"RF{recharge_id}"] = "FAILED"  # WeChat CHANGE / ABNORMAL: the money did not reach the payer
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 1, "errors": 0}
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_error) == ("REFUNDING", "FAILED", "FAIL CHANGE")
    assert recharge_id not in list(services.recharges.refunds())
    assert recharge_id in list(services.recharges.refunds("FAILED"))  # (the session's tables may hold others')
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 0, "errors": 0}  # the job leaves it alone
    assert services.online.refund_uncredited(recharge_id) == REFUND_FAILED  # a person asks: still failed
    assert _refund_calls(fake_channels) == [f"RF{recharge_id}"]  # never sent under another number
    assert _uncredited_only(recharge_id) and _recharge_totals(world.merchant_id, recharge_id) == received
    channel.refund_states[f"RF{recharge_id}"] = "SUCCESS"  # settled at the platform by the person
    assert services.online.refund_uncredited(recharge_id) == "REFUNDED"
    assert sum(a for _, _, a in _recharge_ledger(recharge_id)) == 0
    assert recharge_id not in list(services.recharges.refunds("FAILED"))


def test_a_refund_the_platform_dropped_is_sent_again_under_the_same_number(http, world, services,
                                                                           fake_channels) -> None:
    """Alipay's rule: a failed refund is no longer listed, and is sent again with the same out_request_no."""
    recharge_id = _start(http, world)
    services.admin.cancel(world.merchant_id, CARD)
    channel = fake_channels.by_wallet["alipay"]
    channel.next_refund_states.append("PROCESSING")
    _notify(http, fake_channels, world, recharge_id)
    del channel.refunds[f"RF{recharge_id}"], channel.refund_states[f"RF{recharge_id}"]  # failed: not listed
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 0}
    assert _refund_calls(fake_channels) == [f"RF{recharge_id}"] * 2
    assert _recharge_ledger(recharge_id) == [("refund", "RECHARGE_REFUND", -3_000),
                                             ("uncredited", "RECHARGE_UNCREDITED", 3_000)]
    assert services.recharges.get(recharge_id).status == "REFUNDED"


def test_a_refused_refund_counts_toward_the_limit_a_processing_one_does_not(http, world, services,
                                                                            fake_channels) -> None:
    recharge_id = _start(http, world)
    services.admin.cancel(world.merchant_id, CARD)
    channel = fake_channels.by_wallet["alipay"]
    channel.next_answer["refund"] = ChannelState.UNKNOWN  # no answer at all
    _notify(http, fake_channels, world, recharge_id)
    for _ in range(MAX_REFUND_ATTEMPTS):  # unanswered again and again: asked again, never given up on
        channel.next_answer["query_refund"] = ChannelState.UNKNOWN
        assert services.online.retry_refunds() == {"refunded": 0, "pending": 1, "failed": 0, "errors": 0}
    channel.next_answer["refund"] = ChannelState.FAIL  # then refused, past the limit: a person
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0, "failed": 1, "errors": 0}
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.refund, recharge.refund_attempts) == ("REFUNDING", "FAILED", MAX_REFUND_ATTEMPTS + 2)
    assert _uncredited_only(recharge_id)
    assert services.online.refund_uncredited(recharge_id) == "REFUNDED"  # a person asks again, once it can pay
    assert sum(a for _, _, a in _recharge_ledger(recharge_id)) == 0


def test_one_recharge_failing_in_the_job_does_not_hold_back_the_others(http, world, services, fake_channels) -> None:
    first, second = _start(http, world), _start(http, world, amount=2_000)
    services.admin.cancel(world.merchant_id, CARD)
    channel = fake_channels.by_wallet["alipay"]
    for recharge_id in (first, second):
        channel.next_answer["refund"] = ChannelState.UNKNOWN  # both wait for the job
        assert _notify(http, fake_channels, world, recharge_id).status_code == 200
    channel.next_error["query_refund"] = RuntimeError("a bug in one recharge's step")
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 1}
    assert len([r for r in (first, second) if services.recharges.get(r).status == "REFUNDED"]) == 1
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0, "failed": 0, "errors": 0}
    assert {services.recharges.get(r).status for r in (first, second)} == {"REFUNDED"}
    for recharge_id in (first, second):
        assert sum(a for _, _, a in _recharge_ledger(recharge_id)) == 0  # received, then given back once
