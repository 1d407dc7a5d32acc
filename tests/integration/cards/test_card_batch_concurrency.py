"""The same 20 payments sent at once as two batches and as 20 single requests, to 5 API processes
against the serialised emulator: each (terminal, txn) is booked at most once, a card holding 10 yuan
pays exactly 10 of them, every OK answer of a txn is the same answer, and the ledger adds up."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.card_world import card_snapshot, issue_card
from tests.support.edge_client import signed_headers
from tests.support.ledger_invariants import check_card_ledger
from tests.support.world import seed_world

ROOT = Path(__file__).resolve().parents[3]
WORKERS = 5  # API processes (Lambda containers), each serving one request at a time
PAY, BATCH = "/edge/v1/cards/pay", "/edge/v1/cards/pay-batch"


@pytest.fixture(scope="module")
def api_urls(settings):  # type: ignore[no-untyped-def]
    env = {**os.environ, "STAGE": "test", "DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
           "AWS_DEFAULT_REGION": settings.region, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.cards.api_worker"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(WORKERS)]
    try:
        yield [f"http://127.0.0.1:{int(p.stdout.readline())}" for p in procs]  # type: ignore[union-attr]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def _post(url: str, world, path: str, body: dict) -> dict:  # type: ignore[no-untyped-def]
    raw = json.dumps(body).encode()
    headers = signed_headers(world.agent_id, world.agent_secret, "POST", path, raw, time.time())
    request = urllib.request.Request(url + path, data=raw, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def test_batches_and_singles_of_the_same_payments_at_once(container, cs, api_urls) -> None:  # type: ignore
    world = seed_world(container)
    card = "10000001"
    issue_card(cs, world.merchant_id, card, cash_fen=1_000)
    issue_card(cs, world.merchant_id, "warmup", cash_fen=1_000)
    for n, url in enumerate(api_urls):  # warm containers, as Lambda's would be at lunchtime
        assert _post(url, world, PAY, {"terminal_id": world.terminal_id, "txn": n, "card": "warmup",
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
        return _post(url, world, path, body)

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
