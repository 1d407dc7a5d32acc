"""CARD_PAY in batches (/edge/v1/cards/pay-batch): each item answered as /edge/v1/cards/pay would,
money and ledger exact, repeats per (terminal, txn) shared with the single endpoint, one nonce and
one BatchGetItem per batch (DynamoDB calls counted). Items of different cards are booked at once on
a bounded pool, items of one card in their order: same answers, money, ledger and calls as one by one."""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

from chalicelib.domain.cards import CardState
from chalicelib.domain.settlement_totals import shard_of
from chalicelib.services.card_batch import BatchItem, CardBatchService
from chalicelib.store.cards import CardStore

from chalicelib.store.connection import dynamodb_clients
from devstack.call_counter import DynamoDBCallCounter
from tests.support.card_world import card_snapshot, issue_card
from tests.support.edge_client import signed_headers
from tests.support.ledger_invariants import check_card_ledger
from tests.support.world import seed_world

BATCH = "/edge/v1/cards/pay-batch"
PAY = "/edge/v1/cards/pay"
RICH, POOR, OTHER = "10000001", "10000002", "10000003"


def item(terminal: str, txn: int, card: str, amount_fen: int) -> dict:
    return {"terminal_id": terminal, "txn": txn, "card": card, "amount_fen": amount_fen, "ts": 1}


def batch(edge, items: list) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    answer = edge.post(BATCH, {"items": items})
    return answer.status_code, json.loads(answer.body)


def results(edge, items: list) -> list[tuple[int, dict]]:  # type: ignore[no-untyped-def]
    status, body = batch(edge, items)
    assert status == 200 and body["ok"] is True and len(body["results"]) == len(items)
    return [(r["status"], r["body"]) for r in body["results"]]


def single(edge, payload: dict) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    answer = edge.post(PAY, payload)
    return answer.status_code, json.loads(answer.body)


def test_a_mixed_batch_is_answered_item_by_item_and_books_only_the_payments(edge, world, cs, container) -> None:
    issue_card(cs, world.merchant_id, RICH, cash_fen=10_000)
    issue_card(cs, world.merchant_id, POOR, cash_fen=100)
    issue_card(cs, world.merchant_id, OTHER, cash_fen=1_000)
    foreign = seed_world(container)
    issue_card(cs, foreign.merchant_id, RICH, cash_fen=5_000)
    t1, t2 = list(world.terminals)
    assert single(edge, item(t1, 1, OTHER, 200))[1]["code"] == "OK"  # paid before, alone
    foreign_before = card_snapshot(foreign.merchant_id, [RICH], foreign.terminal_id)

    got = results(edge, [
        item(t1, 2, RICH, 1_250),             # paid
        item(t2, 1, POOR, 500),               # insufficient
        item(t1, 1, OTHER, 200),              # a repeat of the single payment
        item(t1, 3, "99999999", 100),         # unknown card
        item(foreign.terminal_id, 7, RICH, 100),  # another agent's terminal
        item(t2, 2, OTHER, 300),              # paid
    ])

    assert got[0] == (200, {"ok": True, "code": "OK", "msg": "扣款成功", "voice": "扣款12.50元",
                            "balance_fen": 8_750, "charged_fen": 1_250, "txn": 2})
    assert got[1][0] == 200 and (got[1][1]["ok"], got[1][1]["code"], got[1][1]["balance_fen"]) == (False, "ERR007", 100)
    assert got[2][0] == 200 and (got[2][1]["code"], got[2][1]["balance_fen"]) == ("OK", 800)  # the first answer
    assert got[3][0] == 200 and (got[3][1]["ok"], got[3][1]["code"]) == (False, "ERR001")
    assert got[4] == (404, {"ok": False, "code": "NOT_FOUND", "message": "unknown terminal"})
    assert got[5][0] == 200 and (got[5][1]["code"], got[5][1]["balance_fen"]) == ("OK", 500)

    state = card_snapshot(world.merchant_id, [RICH, POOR, OTHER], t1)
    assert [state["cards"][c]["cash_fen"] for c in (RICH, POOR, OTHER)] == [8_750, 100, 500]
    assert state["txn_dedupe"] == [f"txn#{t1}#1", f"txn#{t1}#2"]
    assert card_snapshot(world.merchant_id, [], t2)["txn_dedupe"] == [f"txn#{t2}#2"]
    totals = check_card_ledger(world.merchant_id)
    assert totals.balances_fen == 8_750 + 100 + 500 and totals.payments_booked == 3
    assert card_snapshot(foreign.merchant_id, [RICH], foreign.terminal_id) == foreign_before
    assert check_card_ledger(foreign.merchant_id).payments_booked == 0


def test_each_item_gets_the_answer_the_single_endpoint_gives(edge, world, cs) -> None:
    """Twin cards, twin requests: one through /pay, one through /pay-batch."""
    issue_card(cs, world.merchant_id, RICH, cash_fen=1_000)
    issue_card(cs, world.merchant_id, POOR, cash_fen=1_000)
    t1, t2 = list(world.terminals)
    for txn, amount in ((1, 300), (2, 5_000), (3, 0), (4, 700)):
        alone = single(edge, item(t1, txn, RICH, amount))
        (batched,) = results(edge, [item(t2, txn, POOR, amount)])
        assert batched == alone, (txn, amount)
    assert single(edge, item(t1, 1, RICH, 301)) == results(edge, [item(t2, 1, POOR, 301)])[0]  # 409 both
    assert results(edge, [item(t2, 1, POOR, 301)])[0][0] == 409
    check_card_ledger(world.merchant_id)


def test_a_repeated_batch_gets_the_first_answers_and_books_nothing(edge, world, cs, clock) -> None:
    issue_card(cs, world.merchant_id, RICH, cash_fen=1_000)
    issue_card(cs, world.merchant_id, POOR, cash_fen=100)
    items = [item(world.terminal_id, 1, RICH, 300), item(world.terminal_id, 2, POOR, 300),
             item(world.terminal_id, 3, RICH, 200)]
    first = results(edge, items)
    before = card_snapshot(world.merchant_id, [RICH, POOR], world.terminal_id)
    clock.advance(5)
    assert results(edge, items) == first  # a new request (new nonce) of the same payments
    assert card_snapshot(world.merchant_id, [RICH, POOR], world.terminal_id) == before
    assert single(edge, items[0]) == first[0]  # the single endpoint shares the dedupe
    totals = check_card_ledger(world.merchant_id)
    assert totals.balances_fen == 500 + 100 and totals.payments_booked == 2


def test_a_txn_repeated_with_another_amount_is_refused_and_the_others_book(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, RICH, cash_fen=1_000)
    results(edge, [item(world.terminal_id, 1, RICH, 300)])
    got = results(edge, [item(world.terminal_id, 1, RICH, 400), item(world.terminal_id, 2, RICH, 100)])
    assert got[0] == (409, {"ok": False, "code": "CONFLICT", "message": "this txn was used for another request"})
    assert got[1][1]["code"] == "OK" and got[1][1]["balance_fen"] == 600
    assert check_card_ledger(world.merchant_id).balances_fen == 600


def test_a_malformed_item_is_refused_alone(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, RICH, cash_fen=1_000)
    bad = {**item(world.terminal_id, 1, RICH, 100), "amount_fen": "100"}
    got = results(edge, [bad, "not an object", item(world.terminal_id, 2, RICH, 100)])
    assert got[0] == (400, {"ok": False, "code": "INVALID_REQUEST", "message": "field 'amount_fen' must be int"})
    assert got[1][0] == 400 and got[1][1]["code"] == "INVALID_REQUEST"
    assert got[2][1]["code"] == "OK"
    state = card_snapshot(world.merchant_id, [RICH], world.terminal_id)
    assert state["txn_dedupe"] == [f"txn#{world.terminal_id}#2"] and state["cards"][RICH]["cash_fen"] == 900
    assert check_card_ledger(world.merchant_id).payments_booked == 1


def test_two_items_on_one_card_both_book_on_the_fresh_balance(edge, world, cs, settings) -> None:
    issue_card(cs, world.merchant_id, RICH, cash_fen=1_000)
    results(edge, [item(world.terminal_id, 1, RICH, 1)])  # warms the directory and rules caches
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    got = results(edge, [item(world.terminal_id, 2, RICH, 300), item(world.terminal_id, 3, RICH, 600),
                         item(world.terminal_id, 4, RICH, 200)])
    assert [(b["code"], b.get("balance_fen")) for _, b in got] == [("OK", 699), ("OK", 99), ("ERR007", 99)]
    # The second item on the card reads it again (the prefetched state is stale once the first booked).
    assert counter.snapshot() == {"PutItem": 1, "BatchGetItem": 3, "TransactWriteItems": 2}
    totals = check_card_ledger(world.merchant_id)
    assert totals.balances_fen == 99 and totals.payments_booked == 3


def test_one_nonce_and_one_read_per_batch(edge, world, cs, settings) -> None:
    cards = [str(10000010 + n) for n in range(10)]
    for card in cards:
        issue_card(cs, world.merchant_id, card, cash_fen=1_000)
    results(edge, [item(world.terminal_id, 1, cards[0], 1)])  # warms the directory and rules caches
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    got = results(edge, [item(world.terminal_id, 10 + n, card, 100) for n, card in enumerate(cards)])
    assert all(b["code"] == "OK" for _, b in got)
    assert counter.snapshot() == {"PutItem": 1, "BatchGetItem": 1, "TransactWriteItems": 10}
    counter.reset()
    assert [b for _, b in results(edge, [item(world.terminal_id, 10 + n, c, 100) for n, c in enumerate(cards)])] \
        == [b for _, b in got]  # repeats: answered from the one read, nothing written but the nonce
    assert counter.snapshot() == {"PutItem": 1, "BatchGetItem": 1}
    counter.reset()
    results(edge, [item(world.terminal_id, 30 + n, card, 5_000) for n, card in enumerate(cards)])  # all refused
    assert counter.snapshot() == {"PutItem": 1, "BatchGetItem": 1}
    totals = check_card_ledger(world.merchant_id)
    assert totals.balances_fen == 10 * 1_000 - 1 - 10 * 100 and totals.payments_booked == 11


def test_the_batch_read_takes_100_keys_per_call(world, cs, settings) -> None:
    """50 payments on 50 cards (50 card keys + 50 dedupe keys) are one BatchGetItem, 51 are two; a
    card asked for by many payments is one key. An absent card or record reads as None."""
    issue_card(cs, world.merchant_id, RICH, cash_fen=700)
    wanted = [(world.merchant_id, f"{20000000 + n}", f"txn#{world.terminal_id}#{n}") for n in range(49)]
    wanted.append((world.merchant_id, RICH, f"txn#{world.terminal_id}#99"))
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    reads = cs.cards.read_many_for_payment(wanted)
    assert counter.snapshot() == {"BatchGetItem": 1}
    card, stored = reads[wanted[-1]]
    assert card is not None and card.cash_fen == 700 and stored is None
    assert all(reads[w] == (None, None) for w in wanted[:-1])
    counter.reset()
    assert len(cs.cards.read_many_for_payment(
        wanted + [(world.merchant_id, "30000000", f"txn#{world.terminal_id}#100")])) == 51
    assert counter.snapshot() == {"BatchGetItem": 2}
    counter.reset()
    one_card = [(world.merchant_id, RICH, f"txn#{world.terminal_id}#{200 + n}") for n in range(60)]  # 61 keys
    reads = cs.cards.read_many_for_payment(one_card)
    assert counter.snapshot() == {"BatchGetItem": 1}
    assert {r[0].cash_fen for r in reads.values() if r[0] is not None} == {700} and len(reads) == 60


def test_a_replayed_batch_is_refused_as_a_whole_and_changes_nothing(http, world, cs, clock) -> None:
    issue_card(cs, world.merchant_id, RICH, cash_fen=1_000)
    body = json.dumps({"items": [item(world.terminal_id, 1, RICH, 300)]}).encode()
    headers = signed_headers(world.agent_id, world.agent_secret, "POST", BATCH, body, clock.now(), nonce="f" * 24)
    assert http.post(BATCH, headers=headers, body=body).status_code == 200
    before = card_snapshot(world.merchant_id, [RICH], world.terminal_id)
    replay = http.post(BATCH, headers=headers, body=body)
    assert (replay.status_code, json.loads(replay.body)["message"]) == (401, "nonce already used")
    assert card_snapshot(world.merchant_id, [RICH], world.terminal_id) == before
    assert check_card_ledger(world.merchant_id).balances_fen == 700


def test_a_bad_signature_is_refused_and_changes_nothing(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, RICH, cash_fen=1_000)
    answer = edge.post(BATCH, {"items": [item(world.terminal_id, 1, RICH, 300)]}, **{"X-ScanPay-Signature": "0" * 64})
    assert answer.status_code == 401
    state = card_snapshot(world.merchant_id, [RICH], world.terminal_id)
    assert state["cards"][RICH]["cash_fen"] == 1_000 and state["txn_dedupe"] == []


def test_a_malformed_envelope_is_refused_and_changes_nothing(edge, world, cs) -> None:
    issue_card(cs, world.merchant_id, RICH, cash_fen=1_000)
    too_many = [item(world.terminal_id, n, RICH, 1) for n in range(1, 102)]
    for payload, message in (({}, "field 'items' must be list"), ({"items": {}}, "field 'items' must be list"),
                             ({"items": []}, "items: 1 to 100 payments"),
                             ({"items": too_many}, "items: 1 to 100 payments")):
        answer = edge.post(BATCH, payload)
        assert (answer.status_code, json.loads(answer.body)) == (
            400, {"ok": False, "code": "INVALID_REQUEST", "message": message})
    state = card_snapshot(world.merchant_id, [RICH], world.terminal_id)
    assert state["cards"][RICH]["cash_fen"] == 1_000 and state["txn_dedupe"] == []
    assert check_card_ledger(world.merchant_id).payments_booked == 0


# --- concurrency: different cards at once, one card in order --------------------------------------

def _batch_items(container, terminal_id: str, raw: list[dict]) -> list[BatchItem]:  # type: ignore[no-untyped-def]
    terminal = container.directory.terminal(terminal_id)
    return [BatchItem(terminal, r["txn"], r["card"], r["amount_fen"]) for r in raw]


def _service(container, cs, workers: int, cards: CardStore | None = None) -> CardBatchService:  # type: ignore
    return CardBatchService(replace(container.settings, card_batch_workers=workers), cards or cs.cards, cs.rules,
                            container.directory, container.clock)


def test_many_cards_with_many_items_book_as_one_by_one_would(edge, world, cs, container, settings) -> None:
    """Five cards with money for two 400-fen payments, three payments each, interleaved, plus a repeat
    and a txn reused for another card: through the API (8 threads) and, on twin cards, one by one."""
    t1, t2 = list(world.terminals)
    pooled, alone = [f"1100000{n}" for n in range(5)], [f"1200000{n}" for n in range(5)]
    for card in pooled + alone + ["warmup"]:
        issue_card(cs, world.merchant_id, card, cash_fen=1_000)
    results(edge, [item(t1, 1, "warmup", 1)])  # warms the directory and rules caches

    def batch_of(terminal: str, cards: list[str]) -> list[dict]:
        raw = [item(terminal, 100 + 10 * r + n, card, 400) for r in range(3) for n, card in enumerate(cards)]
        raw.insert(7, item(terminal, 100, cards[0], 400))  # a repeat of the first item, in the same batch
        raw.append(item(terminal, 101, cards[0], 400))  # cards[1]'s first txn, for another card: 409
        return raw

    twin_items = _batch_items(container, t2, batch_of(t2, alone))  # reads the terminal: before counting
    counter = DynamoDBCallCounter(dynamodb_clients(settings))
    got = results(edge, batch_of(t1, pooled))
    calls = counter.snapshot()
    counter.reset()
    one_by_one = _service(container, cs, workers=1).pay(twin_items)
    assert counter.snapshot() == {k: v for k, v in calls.items() if k != "PutItem"}  # the same, but the nonce
    assert got == [(a.status, a.body) for a in one_by_one]

    by_txn = {b["txn"]: b for _, b in got if "txn" in b}
    for n in range(5):  # per card, in the order given: 600, 200, then the third refused
        own = [by_txn[100 + n], by_txn[110 + n], by_txn[120 + n]]
        assert [(b["code"], b["balance_fen"]) for b in own] == [("OK", 600), ("OK", 200), ("ERR007", 200)]
    assert got[7] == got[0] and got[-1][0] == 409
    # 1 nonce; 1 read for the batch and one again for each item after a booking on its card (the second
    # and third of each card, the repeat, the reused txn); 2 bookings per card
    assert calls == {"PutItem": 1, "BatchGetItem": 1 + 5 * 2 + 2, "TransactWriteItems": 10}
    state = card_snapshot(world.merchant_id, pooled + alone)
    assert [state["cards"][c]["cash_fen"] for c in pooled + alone] == [200] * 10
    totals = check_card_ledger(world.merchant_id)
    assert totals.payments_booked == 1 + 20 and totals.balances_fen == 10 * 200 + 999


class RecordingCards(CardStore):
    """The real card store, recording the book_payment calls in flight: the most at once, their
    threads, and any two at once on one settlement totals shard. The first `meet` calls wait for
    each other (a bounded wait: booked one by one, they fail the test instead of overlapping)."""

    def __init__(self, settings: Any, meet: int) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self._meeting = threading.Barrier(meet, timeout=20)
        self._meet = meet
        self.calls = 0
        self.in_flight: list[int] = []  # the totals shard of each booking in flight
        self.most = 0
        self.threads: set[str] = set()
        self.shared_shard = False

    def book_payment(self, card: CardState, *args: Any, **kwargs: Any) -> Any:
        shard = shard_of(card.account_id)
        with self._lock:
            first, self.calls = self.calls < self._meet, self.calls + 1
            self.shared_shard |= shard in self.in_flight
            self.in_flight.append(shard)
            self.most = max(self.most, len(self.in_flight))
            self.threads.add(threading.current_thread().name)
        try:
            if first:
                self._meeting.wait()
            return super().book_payment(card, *args, **kwargs)
        finally:
            with self._lock:
                self.in_flight.remove(shard)


def _cards_by_shard(cs, merchant_id: str, per_shard: int) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """`per_shard` cards (1_000 fen each, among others issued) whose accounts add to each of the 4
    totals shards."""
    by_shard: dict[int, list[str]] = {}
    for n in range(200):  # bounded: 200 accounts fill 4 shards with 2 each in all but freak hashes
        card = str(13000000 + n)
        issue_card(cs, merchant_id, card, cash_fen=1_000)
        state = cs.cards.get(merchant_id, card)
        assert state is not None
        by_shard.setdefault(shard_of(state.account_id), []).append(card)
        if len(by_shard) == 4 and all(len(c) >= per_shard for c in by_shard.values()):
            return [cards[:per_shard] for _, cards in sorted(by_shard.items())]
    raise AssertionError("no accounts on every shard")


def test_payments_overlap_up_to_the_pool_and_never_on_one_totals_shard(world, cs, container, settings) -> None:
    """Eight cards, two per totals shard, two payments each: 4 groups (one per shard) at once on 8 workers."""
    shards = _cards_by_shard(cs, world.merchant_id, per_shard=2)
    raw = [item(world.terminal_id, 10 * n + r, card, 100) for r in range(2)
           for n, card in enumerate(c for cards in shards for c in cards)]
    recording = RecordingCards(settings, meet=4)
    got = _service(container, cs, workers=8, cards=recording).pay(_batch_items(container, world.terminal_id, raw))
    assert [(a.status, a.body["code"], a.body["balance_fen"]) for a in got] == [(200, "OK", 900)] * 8 \
        + [(200, "OK", 800)] * 8
    assert recording.most == 4 and not recording.shared_shard and recording.calls == 16
    assert threading.current_thread().name not in recording.threads
    totals = check_card_ledger(world.merchant_id)
    state = card_snapshot(world.merchant_id, [c for cards in shards for c in cards])
    assert [card["cash_fen"] for card in state["cards"].values()] == [800] * 8
    assert totals.payments_booked == 16 and totals.balances_fen % 1_000 == 8 * 800 % 1_000


def test_the_pool_bounds_the_payments_at_once(world, cs, container, settings) -> None:
    """Four groups (one card per totals shard, two payments each) on 2 workers: two at once, never three."""
    cards = [c for (c,) in _cards_by_shard(cs, world.merchant_id, per_shard=1)]
    raw = [item(world.terminal_id, 10 * n + r, card, 100) for n, card in enumerate(cards) for r in range(2)]
    recording = RecordingCards(settings, meet=2)
    got = _service(container, cs, workers=2, cards=recording).pay(_batch_items(container, world.terminal_id, raw))
    assert [a.body["balance_fen"] for a in got] == [900, 800] * 4
    assert recording.most == 2 and len(recording.threads) == 2 and recording.calls == 8
    assert check_card_ledger(world.merchant_id).payments_booked == 8


def test_one_worker_books_in_the_calling_thread(world, cs, container, settings) -> None:
    cards = [c for (c,) in _cards_by_shard(cs, world.merchant_id, per_shard=1)]
    recording = RecordingCards(settings, meet=1)
    got = _service(container, cs, workers=1, cards=recording).pay(
        _batch_items(container, world.terminal_id, [item(world.terminal_id, n, c, 100) for n, c in enumerate(cards)]))
    assert [a.body["balance_fen"] for a in got] == [900] * 4
    assert recording.most == 1 and recording.threads == {threading.current_thread().name}
