"""The same 20 payments sent at once as two batches and as 20 single requests, to 5 API processes
against the serialised emulator: each (terminal, txn) is booked at most once, a card holding 10 yuan
pays exactly 10 of them, every OK answer of a txn is the same answer, and the ledger adds up."""
from __future__ import annotations

import json
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from tests.integration.cards.api_workers import API_WORKERS as WORKERS, post_signed
from tests.support.card_world import card_snapshot, issue_card
from tests.support.ledger_invariants import check_card_ledger
from tests.support.world import seed_world

PAY, BATCH = "/edge/v1/cards/pay", "/edge/v1/cards/pay-batch"


def test_batches_and_singles_of_the_same_payments_at_once(container, cs, api_urls) -> None:  # type: ignore
    world = seed_world(container)
    card = "10000001"
    issue_card(cs, world.merchant_id, card, cash_fen=1_000)
    issue_card(cs, world.merchant_id, "warmup", cash_fen=1_000)
    for n, url in enumerate(api_urls):  # warm containers, as Lambda's would be at lunchtime
        assert post_signed(url, world, PAY, {"terminal_id": world.terminal_id, "txn": n, "card": "warmup",
                                       "amount_fen": 1, "ts": 1})["code"] == "OK"
    items = [{"terminal_id": world.terminal_id, "txn": 1000 + i, "card": card, "amount_fen": 100, "ts": 1}
             for i in range(20)]
    # (worker, path, body): the whole batch twice, in two orders, and every payment alone
    requests = [(api_urls[0], BATCH, {"items": items}), (api_urls[1], BATCH, {"items": items[::-1]})]
    requests += [(api_urls[2 + i % 3], PAY, item) for i, item in enumerate(items)]
    start = threading.Barrier(len(requests))

    def send(request: tuple[str, str, dict]) -> dict:
        url, path, body = request
        start.wait()
        return post_signed(url, world, path, body)

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(send, requests))

    by_txn: dict[int, list[dict]] = defaultdict(list)
    for (_url, path, body), answer in zip(requests, answers):
        if path == BATCH:
            assert answer["ok"] is True and all(r["status"] == 200 for r in answer["results"])
            for item, result in zip(body["items"], answer["results"]):
                by_txn[item["txn"]].append(result["body"])
        else:
            by_txn[body["txn"]].append(answer)
    paid = {txn for txn, seen in by_txn.items() if any(a["ok"] for a in seen)}
    assert len(paid) == 10
    for txn in paid:  # every OK for a txn is its one booking's answer, given again
        assert len({json.dumps(a, sort_keys=True) for a in by_txn[txn] if a["ok"]}) == 1, by_txn[txn]
    assert sorted(next(a for a in by_txn[t] if a["ok"])["balance_fen"] for t in paid) == list(range(0, 1_000, 100))
    assert all(a["code"] == "ERR007" for txn, seen in by_txn.items() if txn not in paid for a in seen)
    assert card_snapshot(world.merchant_id, [card])["cards"][card]["cash_fen"] == 0
    totals = check_card_ledger(world.merchant_id)
    assert totals.payments_booked == 10 + WORKERS and totals.balances_fen == 1_000 - WORKERS


def test_batches_of_many_cards_at_once_book_each_payment_once(container, cs, api_urls) -> None:  # type: ignore
    """Six cards with money for three 300-fen payments, five payments each, interleaved: one batch on
    three API processes at once (each booking different cards on its own threads, in three orders).
    Each card pays exactly three, each txn is booked at most once, and the ledger adds up. (A card's
    answers within one batch need not fall in its order here: an item may repeat another batch's booking.)"""
    world = seed_world(container)
    cards = [str(10000100 + n) for n in range(6)]
    for card in cards:
        issue_card(cs, world.merchant_id, card, cash_fen=900)
    items = [{"terminal_id": world.terminal_id, "txn": 2000 + 10 * r + n, "card": card, "amount_fen": 300, "ts": 1}
             for r in range(5) for n, card in enumerate(cards)]
    bodies = [{"items": items}, {"items": items[::-1]}, {"items": items[1::2] + items[::2]}]
    start = threading.Barrier(len(bodies))

    def send(request: tuple[str, dict]) -> dict:
        url, body = request
        start.wait()
        return post_signed(url, world, BATCH, body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(send, zip(api_urls, bodies)))

    by_txn: dict[int, list[dict]] = defaultdict(list)
    for body, answer in zip(bodies, answers):
        assert answer["ok"] is True and all(r["status"] == 200 for r in answer["results"])
        for sent, result in zip(body["items"], answer["results"]):
            by_txn[sent["txn"]].append(result["body"])
    for n, card in enumerate(cards):
        own = [by_txn[2000 + 10 * r + n] for r in range(5)]
        paid = [seen for seen in own if any(a["ok"] for a in seen)]
        assert len(paid) == 3, (card, own)
        for seen in paid:  # every OK for a txn is its one booking's answer, given again
            assert len({json.dumps(a, sort_keys=True) for a in seen if a["ok"]}) == 1, seen
        assert sorted(next(a for a in seen if a["ok"])["balance_fen"] for seen in paid) == [0, 300, 600]
        assert all(a["code"] == "ERR007" for seen in own if seen not in paid for a in seen)
    snapshot = card_snapshot(world.merchant_id, cards)
    assert [snapshot["cards"][c]["cash_fen"] for c in cards] == [0] * 6
    totals = check_card_ledger(world.merchant_id)
    assert totals.payments_booked == 6 * 3 and totals.balances_fen == 0
