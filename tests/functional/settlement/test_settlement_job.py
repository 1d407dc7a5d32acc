"""The settlement job over the real store: a hand-computed day, re-runs, adjustments, crashes after every step."""
from __future__ import annotations

import json
import logging
from datetime import date, timedelta

import pytest

from chalicelib.jobs.settlement import main
from chalicelib.services.settlement import SettlementService, json_log
from chalicelib.store.connection import dynamodb_clients
from chalicelib.store.settlement import JobRunStore, SettlementStore
from chalicelib.store.settlement_models import SETTLEMENT_MODELS
from chalicelib.store.registry import Registry
from devstack.call_counter import DynamoDBCallCounter
from tests.functional.settlement.ledger_support import (
    at,
    card_entry,
    dealer_rows,
    forget_settlements,
    late_payment_refunded,
    move_clock,
    paid_order,
    settlement_rows,
)
from tests.support.world import seed_world

D = date(2026, 3, 10)
P = D - timedelta(days=1)


def by_key(rows: list[dict]) -> dict[str, dict]:
    return {row["record_key"]: row for row in rows}


def money(row: dict) -> tuple[int, ...]:
    return tuple(int(row[k]) for k in ("gross_fen", "refunds_fen", "fee_fen", "dealer_share_fen", "net_fen",
                                       "payout_fen"))


@pytest.fixture
def bank_world(container):  # type: ignore[no-untyped-def]
    return seed_world(container, scheme=2)


@pytest.fixture
def direct_world(container):  # type: ignore[no-untyped-def]
    return seed_world(container, scheme=1)


def test_a_day_of_several_merchants_with_hand_computed_numbers(container, clock, bank_world, direct_world,
                                                               refunds, make_settlement, log_lines):
    a, b = bank_world, direct_world
    c = seed_world(container, scheme=2)
    yesterday = paid_order(container, a, 1250, at(P, 12))            # fee 8, share 1 (on P)
    w1 = paid_order(container, a, 1250, at(D, 8))                     # fee 8, share 1
    paid_order(container, a, 333, at(D, 9))                           # fee 1.998 -> 2, share 0
    paid_order(container, a, 1, at(D, 23, 59, 59))                    # fee 0, share 0
    paid_order(container, a, 84, at(D, 10), "alipay")                 # fee 0.504 -> 1, share 0
    big = paid_order(container, a, 2500, at(D, 11), "alipay")         # fee 15, share 2.5 -> 3
    paid_order(container, a, 5000, at(D + timedelta(days=1), 0, 0, 1))  # the next day: not on D
    late_payment_refunded(container, a, w1, 700, at(D, 12))           # passes through: reported only
    move_clock(clock, at(D, 15))
    assert refunds.refund(a.merchant_id, yesterday.order_id, 1250, 1)["status"] == "REFUNDED"  # fee -8, share -1
    assert refunds.refund(a.merchant_id, big.order_id, 500, 1)["status"] == "REFUNDED"         # fee -3, share -1
    paid_order(container, b, 1999, at(D, 12), "alipay")               # scheme 1: fee 11.994 -> 12
    paid_order(container, b, 131, at(D, 13))                          # fee 0.786 -> 1
    card_entry(container.settings, c.merchant_id, "C1", "pay#T1#1#cash", -1500, at(D, 12))
    move_clock(clock, at(D + timedelta(days=1), 0, 40))

    report = make_settlement().run(D, [a.merchant_id, b.merchant_id, c.merchant_id])

    assert report.failed == {} and report.merchants == 3 and len(report.written) == 3
    rows_a = by_key(settlement_rows(a.merchant_id))
    assert list(rows_a) == ["2026-03-10#00"]
    day_a = rows_a["2026-03-10#00"]
    assert money(day_a) == (4168, 1750, 15, 2, 2403, 2403)
    assert day_a["net_fen"] + day_a["fee_fen"] == day_a["gross_fen"] - day_a["refunds_fen"]
    assert [(l["channel"], l["payments"], l["gross_fen"], l["refunds"], l["refunds_fen"], l["fee_fen"],
             l["dealer_share_fen"]) for l in day_a["lines"]] == [
        ("alipay", 2, 2584, 1, 500, 13, 2), ("wechat_v2", 3, 1584, 1, 1250, 2, 0)]
    assert day_a["reported"] == [
        {"section": "late", "kind": "LATE_PAYMENT", "wallet": "alipay", "count": 1, "amount_fen": 700},
        {"section": "late", "kind": "LATE_REFUND", "wallet": "alipay", "count": 1, "amount_fen": -700}]
    assert day_a["payout_id"] == f"PO2026031000-{a.merchant_id}"
    assert [(r["entry_id"], r["amount_fen"], r["kind"]) for r in dealer_rows(a.dealer_id)] == [
        (f"2026-03-10#commission#{a.merchant_id}#00", 2, "COMMISSION")]

    day_b = by_key(settlement_rows(b.merchant_id))["2026-03-10#00"]
    assert money(day_b) == (2130, 0, 13, 0, 2117, 0) and day_b.get("payout_id") is None
    assert dealer_rows(b.dealer_id) == []
    day_c = by_key(settlement_rows(c.merchant_id))["2026-03-10#00"]
    assert money(day_c) == (0, 0, 0, 0, 0, 0) and day_c["lines"] == []
    assert day_c["reported"] == [{"section": "card", "kind": "CARD_PAYMENT", "wallet": "cash", "count": 1,
                                  "amount_fen": -1500}]

    previous = make_settlement().run(P, [a.merchant_id])
    assert previous.written == [f"{a.merchant_id}|2026-03-09#00"]
    assert money(by_key(settlement_rows(a.merchant_id))["2026-03-09#00"]) == (1250, 0, 8, 1, 1242, 1242)

    events = [line["event"] for line in log_lines]
    assert events[:2] == ["start", "settled"] and events.count("settled") == 4 and events.count("done") == 2
    assert all(json.loads(json.dumps(line)) == line for line in log_lines)  # every line is plain JSON


def test_re_runs_write_nothing_and_a_late_entry_becomes_an_adjustment(container, bank_world, make_settlement):
    paid_order(container, bank_world, 1250, at(D, 8))
    first = make_settlement().run(D, [bank_world.merchant_id])
    before = settlement_rows(bank_world.merchant_id), dealer_rows(bank_world.dealer_id)

    again = make_settlement().run(D, [bank_world.merchant_id])

    assert first.written and again.written == [] and again.unchanged == 1
    assert (settlement_rows(bank_world.merchant_id), dealer_rows(bank_world.dealer_id)) == before

    paid_order(container, bank_world, 1001, at(D, 23, 59, 58))  # booked after the day was settled
    Registry(container.sealer, container.clock.now()).put_merchant(  # a later rate change must not re-price D
        bank_world.merchant_id, bank_world.dealer_id, "x", 2, fee_rate_ppm=20_000)
    adjustment = make_settlement().run(D, [bank_world.merchant_id])

    rows = by_key(settlement_rows(bank_world.merchant_id))
    assert adjustment.written == [f"{bank_world.merchant_id}|2026-03-10#01"]
    assert money(rows["2026-03-10#00"]) == (1250, 0, 8, 1, 1242, 1242)
    assert money(rows["2026-03-10#01"]) == (1001, 0, 6, 1, 995, 995)  # 0.6 %: 6.006 -> 6, share 1.001 -> 1
    assert rows["2026-03-10#01"]["payout_id"] == f"PO2026031001-{bank_world.merchant_id}"
    assert [r["amount_fen"] for r in dealer_rows(bank_world.dealer_id)] == [1, 1]
    assert make_settlement().run(D, [bank_world.merchant_id]).written == []


class Crash(Exception):
    pass


def crash_after(step_no: int):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def checkpoint(step: str) -> None:
        seen.append(step)
        if len(seen) == step_no:
            raise Crash(step)

    return checkpoint, seen


def test_a_crash_after_any_step_then_a_re_run_gives_the_same_records(container, clock, bank_world, direct_world,
                                                                      refunds, make_settlement):
    worlds = [bank_world, direct_world]
    ids = [w.merchant_id for w in worlds]
    order = paid_order(container, bank_world, 2500, at(D, 9), "alipay")
    paid_order(container, bank_world, 333, at(D, 10))
    move_clock(clock, at(D, 11))
    refunds.refund(bank_world.merchant_id, order.order_id, 999, 1)
    paid_order(container, direct_world, 131, at(D, 12))
    card_entry(container.settings, bank_world.merchant_id, "C9", "pay#T9#1#cash", -600, at(D, 12))

    def state() -> list:
        return [(settlement_rows(w.merchant_id), dealer_rows(w.dealer_id)) for w in worlds]

    counting, steps = crash_after(0)
    make_settlement(counting).run(D, ids)
    reference = state()
    assert len(steps) == 10  # start, 2 x (read, records, write, progress), done

    for step_no in range(1, len(steps) + 1):
        for world in worlds:
            forget_settlements(world.merchant_id, world.dealer_id)
        checkpoint, _ = crash_after(step_no)
        with pytest.raises(Crash):
            make_settlement(checkpoint).run(D, ids)
        make_settlement().run(D, ids)
        assert state() == reference, steps[step_no - 1]
    payouts = [row["payout_id"] for rows, _ in reference for row in rows if row.get("payout_id")]
    assert len(payouts) == len(set(payouts)) == 1  # the scheme-2 merchant's, once


def test_a_run_that_loses_the_race_to_another_run_writes_nothing_twice(container, bank_world, make_settlement):
    paid_order(container, bank_world, 1250, at(D, 8))
    rival = make_settlement()

    def let_the_rival_win(step: str) -> None:
        if step == f"records:{bank_world.merchant_id}" and not settlement_rows(bank_world.merchant_id):
            rival.run(D, [bank_world.merchant_id])

    loser = make_settlement(let_the_rival_win).run(D, [bank_world.merchant_id])

    assert loser.written == [] and loser.unchanged == 1
    assert list(by_key(settlement_rows(bank_world.merchant_id))) == ["2026-03-10#00"]
    assert len(dealer_rows(bank_world.dealer_id)) == 1


def test_a_day_read_in_many_pages_settles_the_same(container, bank_world, log_lines):
    for amount in (1250, 333, 1, 84, 2500):
        paid_order(container, bank_world, amount, at(D, 9))
    counter = DynamoDBCallCounter(dynamodb_clients(container.settings) +
                                  [model._get_connection().connection.client for model in SETTLEMENT_MODELS])
    paged = SettlementService(SettlementStore(container.settings, page_size=2, source="entries"), JobRunStore(), container.clock,
                              log_lines.append)

    report = paged.run(D, [bank_world.merchant_id])

    ledger_pages = [q for q in counter.queries if q == (f"{container.settings.table_prefix}ledger", "by_merchant_day")]
    assert report.entries == 5 and len(ledger_pages) == 3, counter.queries  # 5 entries in pages of 2
    # The rest are the day's settlement records (moto may answer an unpaginated query in two pages).
    assert {q[0] for q in counter.queries} - {f"{container.settings.table_prefix}ledger"} == {
        f"{container.settings.table_prefix}settlements"}
    assert money(by_key(settlement_rows(bank_world.merchant_id))["2026-03-10#00"]) == \
        (4168, 0, 26, 4, 4142, 4142)  # fees 8 + 2 + 0 + 1 + 15, shares 1 + 0 + 0 + 0 + 3 (2.5 -> 3)


def test_bad_terms_or_unknown_merchants_are_reported_and_the_others_settled(container, bank_world, make_settlement):
    broken = seed_world(container, scheme=2)
    Registry(container.sealer, container.clock.now()).put_merchant(
        broken.merchant_id, broken.dealer_id, "broken", 2, fee_rate_ppm=2_000_000)
    paid_order(container, bank_world, 100, at(D, 8))

    report = make_settlement().run(D, [broken.merchant_id, bank_world.merchant_id, "M-NOBODY"])

    assert set(report.failed) == {broken.merchant_id, "M-NOBODY"}
    assert report.written == [f"{bank_world.merchant_id}|2026-03-10#00"]
    assert settlement_rows(broken.merchant_id) == []


def test_json_log_writes_one_json_object_per_line():
    records: list[str] = []
    logger = logging.getLogger("settlement-json-test")
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    json_log(logger)({"job": "settlement", "day": D, "name": "食堂"})
    assert [json.loads(r) for r in records] == [{"day": "2026-03-10", "job": "settlement", "name": "食堂"}]


def test_the_command_line_re_runs_a_day(container, bank_world, capsys):
    paid_order(container, bank_world, 1250, at(D, 8))
    argv = ["run", "--day", "2026-03-10", "--merchant", bank_world.merchant_id]

    assert main(argv, container=container, log_to_stdout=False) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert main(argv, container=container, log_to_stdout=False) == 0
    again = json.loads(capsys.readouterr().out.splitlines()[-1])

    assert first["written"] == [f"{bank_world.merchant_id}|2026-03-10#00"] and first["payout_fen"] == 1242
    assert again["written"] == [] and again["unchanged"] == 1
    assert main(["run", "--day", "2026-03-10", "--merchant", "M-NOBODY"], container=container,
                log_to_stdout=False) == 1
    with pytest.raises(SystemExit):
        main(["run", "--day", "10/03/2026"], container=container, log_to_stdout=False)
