"""The stub cloud's POST /edge/v1/cards/void, driven by the agent's own signed client over loopback, with
the cloud's semantics (chalicelib/services/card_voids.py): a booked payment is given back, a txn with
nothing booked is claimed so that it never books, a repeat gets the first answer; balances asserted."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cloud import CloudClient, CloudUnavailable
from edge_agent.simulator.stub_cloud import StubCloud

from edge_agent_support import AGENT_ID, CARDS, SECRET, TERMINALS, config_for

PAY, OFFLINE, VOID = "/edge/v1/cards/pay", "/edge/v1/cards/offline", "/edge/v1/cards/void"
CARD = "10000001"


class Edge:
    """The agent's signed client and the stub it talks to."""

    def __init__(self, cloud: StubCloud, client: CloudClient) -> None:
        self.cloud = cloud
        self.client = client

    async def call(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        reply = await self.client.post(path, payload)
        return reply.status, reply.body

    async def pay(self, txn: int, amount_fen: int, card: str = CARD) -> dict[str, Any]:
        status, body = await self.call(PAY, {"terminal_id": "T0001", "txn": txn, "card": card,
                                             "amount_fen": amount_fen})
        assert status == 200, body
        return body

    async def void(self, txn: object, terminal_id: str = "T0001") -> tuple[int, dict[str, Any]]:
        return await self.call(VOID, {"terminal_id": terminal_id, "txn": txn})

    def snapshot(self) -> tuple[dict[str, int], list[tuple[str, int]], dict[tuple[str, int], dict[str, Any]]]:
        return (dict(self.cloud.state.cards), sorted((p.terminal_id, p.txn) for p in self.cloud.booked()),
                dict(self.cloud.state.voids))


def with_edge(tmp_path: Path, scenario: Callable[[Edge], Awaitable[None]], *,
              secret: str = SECRET, **changes: Any) -> None:
    async def main() -> None:
        cloud = await StubCloud(AGENT_ID, SECRET, TERMINALS).start()
        cloud.state.cards = dict(CARDS)
        client = CloudClient(config_for(cloud.url, tmp_path, agent_secret=secret, cloud_attempts=1, **changes))
        try:
            await scenario(Edge(cloud, client))
        finally:
            await client.aclose()
            await cloud.stop()

    asyncio.run(main())


def test_a_booked_payment_is_given_back_once(tmp_path: Path) -> None:
    async def scenario(edge: Edge) -> None:
        assert (await edge.pay(1, 300))["balance_fen"] == 9_700
        assert edge.cloud.state.cards[CARD] == 9_700
        status, body = await edge.void(1)
        assert status == 200, body
        assert body == {"ok": True, "terminal_id": "T0001", "txn": 1, "outcome": "reversed", "card": CARD,
                        "reversed_fen": 300, "balance_fen": 10_000, "voided": True}
        assert edge.cloud.state.cards[CARD] == 10_000 and edge.cloud.booked() == []

        after = edge.snapshot()
        assert await edge.void(1) == (status, body)  # a repeat: the first answer, no second refund
        again = await edge.pay(1, 300)  # the payment's own repeat: its first answer, nothing booked again
        assert (again["ok"], again["balance_fen"]) == (True, 9_700)
        status_off, offline = await edge.call(OFFLINE, {"terminal_id": "T0001", "records": [
            {"txn": 1, "card": CARD, "amount_fen": 300}]})
        assert (status_off, offline["accepted"], offline["rejected"]) == (200, [1], [])  # a repeat, as the cloud
        assert edge.snapshot() == after

    with_edge(tmp_path, scenario)


def test_nothing_booked_is_voided_and_the_late_original_books_nothing(tmp_path: Path) -> None:
    async def scenario(edge: Edge) -> None:
        status, body = await edge.void(2)
        assert (status, body) == (200, {"ok": True, "terminal_id": "T0001", "txn": 2, "outcome": "never_booked"})
        assert await edge.void(2) == (status, body)  # a repeat
        before = edge.snapshot()

        late = await edge.pay(2, 500)  # the original request arrives after all
        assert (late["ok"], late["code"], late["msg"], late["balance_fen"]) == (False, "ERR012", "网络故障", None)
        status_off, offline = await edge.call(OFFLINE, {"terminal_id": "T0001", "records": [
            {"txn": 2, "card": CARD, "amount_fen": 500}]})
        assert (status_off, offline["accepted"], offline["rejected"]) == (200, [], [{"txn": 2, "code": "ERR012"}])
        assert edge.snapshot() == before and edge.cloud.state.cards == CARDS and edge.cloud.booked() == []
        assert (await edge.pay(3, 500))["ok"] is True  # the next txn pays as usual
        assert edge.cloud.state.cards[CARD] == 9_500

    with_edge(tmp_path, scenario)


def test_a_refused_payment_is_never_booked(tmp_path: Path) -> None:
    """The cloud keeps no record of a refusal: voiding it claims the txn, as for an absent one."""
    async def scenario(edge: Edge) -> None:
        assert (await edge.pay(4, 600, card="10000003"))["code"] == "ERR007"  # 500 fen on the card
        assert (await edge.void(4))[1]["outcome"] == "never_booked"
        edge.cloud.state.cards["10000003"] = 1_000  # topped up since: the txn still never books
        assert (await edge.pay(4, 600, card="10000003"))["code"] == "ERR012"
        assert edge.cloud.state.cards["10000003"] == 1_000 and edge.cloud.booked() == []

    with_edge(tmp_path, scenario)


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"terminal_id": "T0001", "txn": "1"}, 400, "INVALID_REQUEST"),
    ({"terminal_id": "T0001", "txn": -1}, 400, "INVALID_REQUEST"),
    ({"terminal_id": "T0001", "txn": True}, 400, "INVALID_REQUEST"),
    ({"terminal_id": "T0001", "txn": 1.5}, 400, "INVALID_REQUEST"),
    ({"terminal_id": "T0001", "txn": 2**63}, 400, "INVALID_REQUEST"),
    ({"terminal_id": 1, "txn": 1}, 400, "INVALID_REQUEST"),
    ({"terminal_id": "T-NOBODY", "txn": 1}, 404, "NOT_FOUND"),
    ({"terminal_id": "T0001", "txn": 7}, 409, "CONFLICT"),  # a QR order's txn
])
def test_bad_voids_change_nothing(tmp_path: Path, payload: dict, status: int, code: str) -> None:
    async def scenario(edge: Edge) -> None:
        await edge.pay(1, 300)
        assert (await edge.call("/edge/v1/orders/qr", {"terminal_id": "T0001", "txn": 7, "amount_fen": 100}))[0] == 200
        before = edge.snapshot()
        answer = await edge.call(VOID, payload)
        assert (answer[0], answer[1]["code"]) == (status, code)
        assert edge.snapshot() == before and edge.cloud.state.cards[CARD] == 9_700

    with_edge(tmp_path, scenario)


def test_void_signature_is_checked(tmp_path: Path) -> None:
    async def scenario(edge: Edge) -> None:
        status, body = await edge.void(1)
        assert (status, body["code"]) == (401, "UNAUTHORIZED")
        assert edge.cloud.state.voids == {} and edge.cloud.state.cards == CARDS

    with_edge(tmp_path, scenario, secret="not-the-agent-secret")


def test_a_busy_card_answers_503_and_changes_nothing(tmp_path: Path) -> None:
    async def scenario(edge: Edge) -> None:
        await edge.pay(1, 300)
        before = edge.snapshot()
        edge.cloud.void_busy = True
        with pytest.raises(CloudUnavailable, match="HTTP 503 ERR012"):
            await edge.void(1)
        with pytest.raises(CloudUnavailable, match="HTTP 503 ERR012"):
            await edge.void(2)
        assert edge.snapshot() == before and edge.cloud.state.cards[CARD] == 9_700
        edge.cloud.void_busy = False
        assert (await edge.void(1))[1]["balance_fen"] == 10_000

    with_edge(tmp_path, scenario)
