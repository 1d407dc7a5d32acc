"""50 simultaneous payments on one card holding 10 yuan, through the HTTP API against the serialised
emulator: exactly 10 succeed, the balance ends at zero, every answer's balance is exact."""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from tests.integration.cards.api_workers import API_WORKERS as WORKERS, post_signed
from tests.support.card_world import card_snapshot, issue_card
from tests.support.ledger_invariants import check_card_ledger
from tests.support.world import seed_world

PAYMENTS = 50
PAY = "/edge/v1/cards/pay"


def _post(url: str, world, body: dict) -> dict:  # type: ignore[no-untyped-def]
    return post_signed(url, world, PAY, body, timeout=60)


def test_fifty_simultaneous_payments_on_ten_yuan(container, cs, api_urls) -> None:  # type: ignore[no-untyped-def]
    world = seed_world(container)
    card = "10000001"
    issue_card(cs, world.merchant_id, card, cash_fen=1_000)
    issue_card(cs, world.merchant_id, "warmup", cash_fen=1_000)
    for n, url in enumerate(api_urls):  # warm containers, as Lambda's would be at lunchtime
        assert _post(url, world, {"terminal_id": world.terminal_id, "txn": n, "card": "warmup", "amount_fen": 1,
                                  "ts": int(time.time())})["code"] == "OK"
    start = threading.Barrier(PAYMENTS)

    def one(i: int) -> dict:
        body = {"terminal_id": world.terminal_id, "txn": 1000 + i, "card": card, "amount_fen": 100,
                "ts": int(time.time())}
        start.wait()
        return _post(api_urls[i % WORKERS], world, body)

    with ThreadPoolExecutor(PAYMENTS) as pool:
        answers = list(pool.map(one, range(PAYMENTS)))

    assert Counter(a["code"] for a in answers) == {"OK": 10, "ERR007": 40}
    assert sorted(a["balance_fen"] for a in answers if a["ok"]) == list(range(0, 1_000, 100))
    assert card_snapshot(world.merchant_id, [card])["cards"][card]["cash_fen"] == 0
    totals = check_card_ledger(world.merchant_id)
    assert totals.payments_booked == 10 + WORKERS and totals.balances_fen == 1_000 - WORKERS
