"""The monthly subsidy grant: reset or carry by setting, once per card and month, live cards only."""
from __future__ import annotations

import pytest

from chalicelib.jobs.cards import grant_card_subsidies
from chalicelib.services.card_subsidy import SubsidyService
from chalicelib.store.canteen_rules import CanteenRulesStore
from tests.support.card_world import card_snapshot, grant_subsidy, issue_card
from tests.support.ledger_invariants import check_card_ledger

DEC_1 = 1_796_054_700.0  # 2026-12-01 00:05 Beijing
CLASSES = {"staff": {"monthly_subsidy_fen": 20_000}, "visitor": {}}


@pytest.mark.parametrize("policy,expected", [("reset", 20_000), ("carry", 20_300)])
def test_grant_resets_or_carries_over_once_a_month(cs, world, clock, policy, expected) -> None:  # type: ignore[no-untyped-def]
    cs.rules.put_rules(world.merchant_id, {"subsidy_policy": policy, "classes": CLASSES}, None, clock.now())
    issue_card(cs, world.merchant_id, "60000001", class_code="staff")
    grant_subsidy(cs, world.merchant_id, "60000001", 300)
    report = cs.subsidy.grant_month(world.merchant_id, "2026-12")
    assert (report.cards_granted, report.granted_fen, report.expired_fen) == (1, 20_000, 300 if policy == "reset" else 0)
    again = cs.subsidy.grant_month(world.merchant_id, "2026-12")
    assert (again.cards_granted, again.cards_skipped) == (0, 1)
    card = card_snapshot(world.merchant_id, ["60000001"])["cards"]["60000001"]
    assert (card["subsidy_fen"], card["subsidy_month"]) == (expected, "2026-12")
    totals = check_card_ledger(world.merchant_id)
    assert totals.by_kind["SUBSIDY_GRANT"] == 20_300 and totals.balances_fen == expected


def test_only_live_cards_of_subsidised_classes(cs, world, clock) -> None:
    cs.rules.put_rules(world.merchant_id, {"classes": CLASSES}, None, clock.now())
    for card, klass in (("60000001", "staff"), ("60000002", "staff"), ("60000003", "staff"), ("60000004", "visitor")):
        issue_card(cs, world.merchant_id, card, class_code=klass)
    cs.admin.report_lost(world.merchant_id, "60000002")
    cs.admin.cancel(world.merchant_id, "60000003")
    report = cs.subsidy.grant_month(world.merchant_id, "2026-12")
    assert (report.cards_granted, report.cards_skipped) == (2, 2)
    cards = card_snapshot(world.merchant_id, ["60000001", "60000002", "60000003", "60000004"])["cards"]
    assert [cards[c]["subsidy_fen"] for c in sorted(cards)] == [20_000, 20_000, 0, 0]
    check_card_ledger(world.merchant_id)


def test_a_replaced_card_keeps_the_months_grant(cs, world, clock) -> None:
    cs.rules.put_rules(world.merchant_id, {"classes": CLASSES}, None, clock.now())
    issue_card(cs, world.merchant_id, "60000001", class_code="staff")
    cs.subsidy.grant_month(world.merchant_id, "2026-12")
    cs.admin.replace(world.merchant_id, "60000001", "60000009")
    assert cs.subsidy.grant_month(world.merchant_id, "2026-12").cards_granted == 0
    assert card_snapshot(world.merchant_id, ["60000009"])["cards"]["60000009"]["subsidy_fen"] == 20_000


class OneMerchant(CanteenRulesStore):
    """The real rules store, listing only this test's merchant (the shared emulator holds other
    tests' subsidised merchants too)."""

    def __init__(self, merchant_id: str) -> None:
        super().__init__()
        self.merchant_id = merchant_id

    def subsidised_merchants(self) -> list[str]:
        return [self.merchant_id]


def test_the_daily_job_grants_on_the_first_days_only(cs, world, clock) -> None:
    cs.rules.put_rules(world.merchant_id, {"classes": CLASSES}, None, clock.now())
    issue_card(cs, world.merchant_id, "60000001", class_code="staff")
    assert grant_card_subsidies.func({}) == []  # 18 November: nothing to do, nothing read
    service = SubsidyService(cs.cards, OneMerchant(world.merchant_id), clock)
    clock.advance(DEC_1 - clock.now())
    assert [(r.month, r.cards_granted) for r in service.run()] == [("2026-12", 1)]
    clock.advance(3 * 86_400)  # 4 December: past the catch-up days
    assert service.run() == []
    assert card_snapshot(world.merchant_id, ["60000001"])["cards"]["60000001"]["subsidy_fen"] == 20_000


def test_the_job_lists_subsidised_merchants_from_an_index_without_a_scan(cs, world, clock, container) -> None:
    from chalicelib.store.connection import dynamodb_clients
    from devstack.call_counter import DynamoDBCallCounter
    from tests.support.world import seed_world

    plain = seed_world(container).merchant_id
    cs.rules.put_rules(world.merchant_id, {"classes": CLASSES}, None, clock.now())
    cs.rules.put_rules(plain, {"classes": {"visitor": {}}}, None, clock.now())
    counter = DynamoDBCallCounter(dynamodb_clients(container.settings))
    listed = cs.rules.subsidised_merchants()
    assert world.merchant_id in listed and plain not in listed
    assert counter.snapshot() == {"Query": 1}  # no Scan
    ((table, index),) = counter.queries
    assert table.endswith("canteen_rules") and index == "with_subsidy"
    cs.rules.put_rules(world.merchant_id, {"classes": {"staff": {}}}, None, clock.now())  # subsidy withdrawn
    assert world.merchant_id not in cs.rules.subsidised_merchants()
    cs.rules.put_rules(plain, {"classes": CLASSES}, None, clock.now())
    assert plain in cs.rules.subsidised_merchants()
