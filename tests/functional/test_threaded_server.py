"""The app served from many threads at once (as `make run` does) answers each request with its own."""
from __future__ import annotations

import json
import threading

import httpx
from chalice.config import Config
from chalice.local import LocalDevServer

from app import app
from tests.support.edge_client import signed_headers

QR = "/edge/v1/orders/qr"


def test_concurrent_requests_each_get_their_own_answer(container, world, clock) -> None:
    server = LocalDevServer(app, Config(chalice_stage="local"), "127.0.0.1", 0)
    port = server.server.server_address[1]
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    answers: dict[int, httpx.Response] = {}
    barrier = threading.Barrier(16)

    def create(txn: int) -> None:
        body = json.dumps({"terminal_id": world.terminal_id, "txn": txn, "amount_fen": 100 + txn}).encode()
        headers = signed_headers(world.agent_id, world.agent_secret, "POST", QR, body, clock.now())
        barrier.wait()
        answers[txn] = httpx.post(f"http://127.0.0.1:{port}{QR}", content=body, headers=headers, timeout=30)

    threads = [threading.Thread(target=create, args=(txn,)) for txn in range(1, 17)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    server.shutdown()
    assert sorted(answers) == list(range(1, 17))
    for txn, answer in answers.items():
        assert answer.status_code == 200, (txn, answer.text)
        assert answer.json()["amount_fen"] == 100 + txn
    assert len({a.json()["order_id"] for a in answers.values()}) == 16


def test_each_thread_sees_its_own_current_request() -> None:
    """Deterministic: plain Chalice fails this (one attribute shared by all threads)."""
    seen: dict[str, object] = {}
    first_set, second_set = threading.Event(), threading.Event()

    def first() -> None:
        app.current_request = "request of thread 1"
        first_set.set()
        second_set.wait(5)
        seen["first"] = app.current_request

    def second() -> None:
        first_set.wait(5)
        app.current_request = "request of thread 2"
        second_set.set()
        seen["second"] = app.current_request

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"first": "request of thread 1", "second": "request of thread 2"}
