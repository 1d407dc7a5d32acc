"""The agent's card-pay batches against the real API (LocalDevServer on loopback, DynamoDB in moto):
the agent's own cloud client, store and batcher send one swipe alone and the swipes that met it in
flight as one /edge/v1/cards/pay-batch; each is answered as alone, balances and the ledger are exact,
and the same payments asked again (alone and in a batch) get their first answers and book nothing.

The batcher is driven directly, with a deadline of its own: through the terminal link the 800 ms
deadline would make the test depend on how fast the emulator answers on a loaded machine (the
link's path is covered by tests/e2e and the stub-cloud tests)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from chalicelib.services.card_container import card_services
from edge_agent.answers import digest
from edge_agent.card_batch import CardPayBatcher
from edge_agent.cloud import PATH_CARD_PAY, PATH_CARD_PAY_BATCH, CloudClient
from edge_agent.config import AgentConfig
from edge_agent.payments import online_answer
from edge_agent.protocol import Command
from edge_agent.store import Store
from tests.support.card_world import card_snapshot, issue_card
from tests.support.ledger_invariants import check_card_ledger

CARDS = {"10000001": 1_000, "10000002": 1_000, "10000003": 150}
DEADLINE_S = 60.0  # never reached: answers here must not depend on the emulator's speed


class CountingClient(CloudClient):
    """The agent's client, counting the calls per path (the API's own counts are not visible here)."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.paths: list[str] = []

    async def post(self, path: str, payload: dict[str, Any], **kwargs: Any) -> Any:
        self.paths.append(path)
        return await super().post(path, payload, **kwargs)


def test_one_swipe_alone_and_the_rest_in_one_batch(api_url, world, live_container, tmp_path: Path) -> None:
    cs = card_services(live_container)
    for card, cash in CARDS.items():
        issue_card(cs, world.merchant_id, card, cash_fen=cash)
    t1, t2 = sorted(world.terminals)
    swipes = [(t1, 1, "10000001", 100), (t2, 1, "10000002", 200), (t1, 2, "10000001", 300),
              (t2, 2, "10000003", 100), (t1, 3, "10000003", 100), (t2, 3, "10000002", 50),
              (t1, 4, "99999999", 10)]

    async def scenario() -> tuple[list[dict], list[dict], list[str]]:
        config = AgentConfig.from_dict({"agent_id": world.agent_id, "agent_secret": world.agent_secret,
                                        "cloud_url": api_url, "data_dir": str(tmp_path)})
        client = CountingClient(config)
        store = Store.open(tmp_path / "agent.db")
        batcher = CardPayBatcher(client, store, online_answer, max_in_flight=1)

        def pay(tid: str, txn: int, card: str, fen: int) -> Any:
            payload = {"terminal_id": tid, "txn": txn, "card": card, "amount_fen": fen, "ts": 1}
            return batcher.pay(tid, txn, digest(Command.CARD_PAY, card, fen), payload, DEADLINE_S)

        try:
            # All in one turn of the loop: the first goes alone, the six others wait for it and go together.
            answers = await asyncio.gather(*(pay(*s) for s in swipes))
            again = await asyncio.gather(*(pay(*s) for s in swipes))  # as a terminal's repeats after a restart
            return list(answers), list(again), client.paths
        finally:
            await client.aclose()
            store.close()

    answers, again, paths = asyncio.run(scenario())
    assert paths == [PATH_CARD_PAY, PATH_CARD_PAY_BATCH, PATH_CARD_PAY, PATH_CARD_PAY_BATCH]
    by_swipe = {(t, txn): a for (t, txn, _c, _f), a in zip(swipes, answers)}
    assert [by_swipe[(t1, n)]["code"] for n in (1, 2, 3, 4)] == ["OK", "OK", "ERR007", "ERR001"]
    assert [by_swipe[(t2, n)]["code"] for n in (1, 2, 3)] == ["OK", "OK", "OK"]  # in order: t2/2 came first
    assert [by_swipe[(t1, n)]["balance_fen"] for n in (1, 2)] == [900, 600]
    assert not any(a["offline"] for a in answers)
    assert [a for a in again if a["ok"]] == [a for a in answers if a["ok"]]  # the first answers again

    state = card_snapshot(world.merchant_id, list(CARDS), t1)
    assert [state["cards"][c]["cash_fen"] for c in CARDS] == [600, 750, 50]
    assert state["txn_dedupe"] == [f"txn#{t1}#1", f"txn#{t1}#2"]
    totals = check_card_ledger(world.merchant_id)
    assert totals.balances_fen == 600 + 750 + 50 and totals.payments_booked == 5
