"""Settlement from the running totals kept by the money transactions, cross-checked against the entries."""
from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from chalicelib.channels.base import ChannelState
from chalicelib.channels.bills import Bill
from chalicelib.container import Container
from chalicelib.jobs.settlement import main
from chalicelib.services.card_container import card_services
from chalicelib.services.reconciliation import ReconciliationService
from chalicelib.services.settlement import SettlementService
from chalicelib.store.connection import dynamodb_clients
from chalicelib.store.directory import TerminalInfo
from chalicelib.store.registry import Registry
from chalicelib.store.orders import ledger_entry
from chalicelib.store.settlement import JobRunStore, ReconciliationStore, SettlementStore
from chalicelib.store.settlement_totals import SettlementTotalsModel
from devstack.call_counter import DynamoDBCallCounter
from tests.functional.settlement.ledger_support import (
    at,
    forget_settlements,
    late_payment_refunded,
    move_clock,
    dealer_rows,
    paid_order,
    settlement_rows,
)
from tests.support.card_world import issue_card
from tests.support.world import seed_world

D = date(2026, 3, 10)
P = D - timedelta(days=1)


def settle_with(container: Container, source: str, merchant_ids: list[str], log: list[dict]) -> Any:
    service = SettlementService(SettlementStore(container.settings, source=source), JobRunStore(), container.clock,
                                log.append)
    return service.run(D, merchant_ids)


def ledger_queries(counter: DynamoDBCallCounter, container: Container) -> list:
    return [q for q in counter.queries if q == (f"{container.settings.table_prefix}ledger", "by_merchant_day")]


def test_a_hand_computed_day_settles_the_same_from_totals_and_from_entries(container, clock, refunds) -> None:
    a, b = seed_world(container, scheme=2), seed_world(container, scheme=1)
    cards = card_services(container)
    move_clock(clock, at(P, 9))
    issue_card(cards, b.merchant_id, "20000001", cash_fen=5_000)  # a recharge on P: not on D
    yesterday = paid_order(container, a, 1250, at(P, 12))            # fee 8, share 1 (on P)
    w1 = paid_order(container, a, 1250, at(D, 8))                     # fee 7.5 -> 8, share 1.25 -> 1
    paid_order(container, a, 333, at(D, 9))                           # fee 1.998 -> 2, share 0
    paid_order(container, a, 84, at(D, 10), "alipay")                 # fee 0.504 -> 1, share 0
    big = paid_order(container, a, 2500, at(D, 11), "alipay")         # fee 15, share 2.5 -> 3
    late_payment_refunded(container, a, w1, 700, at(D, 12))           # reported only
    paid_order(container, b, 1999, at(D, 12), "alipay")               # scheme 1: fee 11.994 -> 12
    move_clock(clock, at(D, 12, 30))
    terminal = TerminalInfo(b.terminal_id, b.agent_id, b.merchant_id, b.site_id, True)
    answer = cards.payments.pay(terminal, 1, "20000001", 1500)       # a card payment: reported, not settled
    assert answer["ok"] and answer["balance_fen"] == 3500, answer
    move_clock(clock, at(D, 15))
    assert refunds.refund(a.merchant_id, yesterday.order_id, 1250, 1)["status"] == "REFUNDED"  # fee -8, share -1
    assert refunds.refund(a.merchant_id, big.order_id, 500, 1)["status"] == "REFUNDED"         # fee -3, share -1
    move_clock(clock, at(D + timedelta(days=1), 0, 40))
    ids = [a.merchant_id, b.merchant_id]
    counter = DynamoDBCallCounter({id(c): c for c in dynamodb_clients(container.settings)}.values())
    from_totals_log: list[dict] = []

    from_totals = settle_with(container, "totals", ids, from_totals_log)

    assert ledger_queries(counter, container) == []  # not one entry read
    totals, records = f"{container.settings.table_prefix}settlement_totals", f"{container.settings.table_prefix}settlements"
    assert sorted(counter.queries) == sorted([(records, None), (totals, None)] * 2)  # per merchant: records, totals
    rows = {m: settlement_rows(m) for m in ids}, dealer_rows(a.dealer_id)
    day_a = rows[0][a.merchant_id][0]
    assert (day_a["gross_fen"], day_a["refunds_fen"], day_a["fee_fen"], day_a["dealer_share_fen"],
            day_a["net_fen"], day_a["payout_fen"]) == (4167, 1750, 15, 2, 2402, 2402)
    assert day_a["reported"] == [
        {"section": "late", "kind": "LATE_PAYMENT", "wallet": "alipay", "count": 1, "amount_fen": 700},
        {"section": "late", "kind": "LATE_REFUND", "wallet": "alipay", "count": 1, "amount_fen": -700}]
    day_b = rows[0][b.merchant_id][0]
    assert (day_b["gross_fen"], day_b["fee_fen"], day_b["net_fen"], day_b["payout_fen"]) == (1999, 12, 1987, 0)
    assert day_b["reported"] == [{"section": "card", "kind": "CARD_PAYMENT", "wallet": "cash", "count": 1,
                                  "amount_fen": -1500}]
    assert from_totals.entries == 8 + 2 and [e["event"] for e in from_totals_log].count("read_entries") == 0

    for world in (a, b):
        forget_settlements(world.merchant_id, world.dealer_id)
    counter.reset()
    from_entries = settle_with(container, "entries", ids, [])

    assert len(ledger_queries(counter, container)) == 2
    assert ({m: settlement_rows(m) for m in ids}, dealer_rows(a.dealer_id)) == rows  # identical records
    assert from_entries.entries == from_totals.entries and from_entries.written == from_totals.written


def test_a_rate_change_during_the_day_settles_from_the_entries(container, clock, make_settlement, log_lines) -> None:
    world = seed_world(container, scheme=2)
    paid_order(container, world, 1001, at(D, 8))  # priced at 0.6 %: fee 6
    Registry(container.sealer, container.clock.now()).put_merchant(
        world.merchant_id, world.dealer_id, "x", 2, fee_rate_ppm=20_000)
    container.directory.clear_cache()
    paid_order(container, world, 1001, at(D, 9))  # priced at 2 %: fee 20

    report = make_settlement().run(D, [world.merchant_id])

    row = settlement_rows(world.merchant_id)[0]
    assert (row["fee_rate_ppm"], row["gross_fen"], row["fee_fen"]) == (20_000, 2002, 40)  # the entries, at 2 %
    assert report.entries == 2
    assert [line["merchant_id"] for line in log_lines if line["event"] == "read_entries"] == [world.merchant_id]


def _transaction_tables(container: Container) -> list[list[str]]:
    """The tables of each TransactWriteItems item, per call (a botocore hook on the store's clients)."""
    seen: list[list[str]] = []

    def record(params: dict, **_: Any) -> None:
        seen.append(sorted(next(iter(item.values()))["TableName"] for item in params["TransactItems"]))

    for client in dynamodb_clients(container.settings):
        client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", record)
    return seen


def test_each_money_transaction_carries_its_totals_item_and_a_retry_adds_nothing(container, clock, refunds) -> None:
    world = seed_world(container, scheme=2)
    prefix = container.settings.table_prefix
    seen = _transaction_tables(container)
    order = paid_order(container, world, 1250, at(D, 8))
    move_clock(clock, at(D, 9))
    refunds.refund(world.merchant_id, order.order_id, 250, 1)
    refunds.refund(world.merchant_id, order.order_id, 250, 1)  # a repeat: already booked, no transaction

    orders, ledger, dedupe, totals = (f"{prefix}{name}" for name in ("orders", "ledger", "dedupe", "settlement_totals"))
    assert seen[-3:] == [  # the totals item is one more item of the booking transactions, never another call
        sorted([orders, ledger, dedupe, totals]),          # the payment
        sorted([dedupe, orders]),                          # the refund's request, its amount held on the order
        sorted([orders, ledger, dedupe, dedupe, totals])]  # the refund booked (and its request marked booked)
    items = [i.attribute_values for i in SettlementTotalsModel.query(f"{world.merchant_id}#{D.isoformat()}")]
    assert len(items) == 1 and items[0]["channel_shard"].startswith("wechat_v2#")
    raw = SettlementTotalsModel._get_connection().get_item(items[0]["merchant_day"], items[0]["channel_shard"],
                                                           consistent_read=True)["Item"]
    counters = {name: int(value["N"]) for name, value in raw.items() if "N" in value}
    assert counters == {"S|wechat|payments": 1, "S|wechat|gross_fen": 1250, "S|wechat|refunds": 1,
                        "S|wechat|refunds_fen": 250, "S|wechat|priced|s2f6000d1000": 2,
                        "S|wechat|fee_fen|s2f6000d1000": 8 - 2, "S|wechat|share_fen|s2f6000d1000": 1}


def test_the_command_line_settles_from_the_entries_when_asked(container, capsys) -> None:
    world = seed_world(container, scheme=2)
    paid_order(container, world, 1250, at(D, 8))
    argv = ["run", "--day", D.isoformat(), "--merchant", world.merchant_id]

    assert main(argv + ["--from-entries"], container=container, log_to_stdout=False) == 0
    from_entries = json.loads(capsys.readouterr().out.splitlines()[-1])
    records = settlement_rows(world.merchant_id)
    forget_settlements(world.merchant_id, world.dealer_id)
    assert main(argv, container=container, log_to_stdout=False) == 0
    from_totals = json.loads(capsys.readouterr().out.splitlines()[-1])

    assert from_entries == from_totals and from_totals["payout_fen"] == 1242
    assert settlement_rows(world.merchant_id) == records


def test_reconciliation_reports_a_day_whose_totals_miss_an_entry(container, clock, log_lines) -> None:
    clean, broken = seed_world(container, scheme=2), seed_world(container, scheme=1)
    paid_order(container, clean, 1250, at(D, 8))
    paid_order(container, broken, 999, at(D, 9))
    ledger_entry("order#OFORGOTTEN", "payment", broken.merchant_id, at(D, 10), amount_fen=500, kind="QR_PAYMENT",
                 order_id="OFORGOTTEN", wallet="wechat", channel="wechat_v2", created_at=at(D, 10)).save()  # no totals
    service = ReconciliationService(SettlementStore(container.settings), ReconciliationStore(), container.orders,
                                    container.channels, lambda config, day: Bill(ChannelState.SUCCESS, ()), None,
                                    JobRunStore(), container.clock, log_lines.append)

    report = service.run(D, [clean.merchant_id, broken.merchant_id])

    assert report.totals_differ == [broken.merchant_id]
    assert [line["merchant_id"] for line in log_lines if line["event"] == "totals_differ"] == [broken.merchant_id]
    # The entries path settles what the ledger holds, the forgotten entry included.
    make = SettlementService(SettlementStore(container.settings, source="entries"), JobRunStore(), container.clock,
                             log_lines.append)
    make.run(D, [broken.merchant_id])
    assert settlement_rows(broken.merchant_id)[0]["gross_fen"] == 999 + 500
