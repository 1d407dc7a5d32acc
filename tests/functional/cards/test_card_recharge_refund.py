"""An online recharge paid after its account was closed is refunded through the channel (once,
whatever repeats), recorded and visible; after a card replacement the credit lands on the new card.
Alipay through fake channels here; WeChat end to end through the sandbox in tests/integration/cards/."""
from __future__ import annotations

import json

import pytest

from chalicelib.channels.base import ChannelState
from chalicelib.services.card_container import CardServices, install_card_services
from chalicelib.services.card_recharge import MAX_REFUND_ATTEMPTS
from chalicelib.store.card_recharges import recharge_account
from chalicelib.store.models import LedgerEntryModel
from tests.support.card_world import card_snapshot, issue_card, operator_for
from tests.support.ledger_invariants import check_card_ledger

CARD, NEW_CARD = "73000001", "73000002"


@pytest.fixture
def services(container, world) -> CardServices:  # type: ignore[no-untyped-def]
    built = CardServices(container)
    install_card_services(built)
    issue_card(built, world.merchant_id, CARD, cash_fen=1_000)
    return built


def _start(http, world, amount: int = 3_000) -> str:  # type: ignore[no-untyped-def]
    answer = http.post(f"/cards/v1/alipay/{world.merchant_id}/recharge", headers={"Content-Type": "application/json"},
                       body=json.dumps({"card_no": CARD, "number": CARD, "amount_fen": amount}))
    assert answer.status_code == 201, answer.body
    return json.loads(answer.body)["recharge_id"]


def _notify(http, fake_channels, world, recharge_id: str):  # type: ignore[no-untyped-def]
    channel = fake_channels.by_wallet["alipay"]
    channel.pay(recharge_id)
    headers, body = channel.notification(recharge_id)
    return http.post(f"/cards/notify/{world.merchant_id}/alipay",
                     headers={"Content-Type": "application/json", **headers}, body=body)


def _refund_calls(fake_channels) -> list[str]:  # type: ignore[no-untyped-def]
    return [ref for name, ref in fake_channels.by_wallet["alipay"].calls if name == "refund"]


def _recharge_ledger(recharge_id: str) -> list[tuple[str, str, int]]:
    return sorted((e.entry_id, e.kind, int(e.amount_fen))
                  for e in LedgerEntryModel.query(recharge_account(recharge_id), consistent_read=True))


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
    assert services.online.retry_refunds() == {"refunded": 0, "pending": 0}
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
    assert services.online.retry_refunds() == {"refunded": 1, "pending": 0}
    assert _refund_calls(fake_channels) == [f"RF{recharge_id}"] * 2  # the same refund asked again
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
    assert list(services.recharges.refunds()) == [] and list(services.recharges.refunds("FAILED")) == [recharge_id]
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
