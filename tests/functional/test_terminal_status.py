"""Terminal link status with the offline counts the edge agents report (POST /edge/v1/terminals/heartbeat),
read back by the merchant's operators (GET /cards/v1/terminals). A malformed report stores nothing."""
from __future__ import annotations

import json

import pytest

from chalicelib.services.card_container import card_services
from chalicelib.store.models import TerminalModel
from tests.support.card_world import OperatorClient, operator_for
from tests.support.world import seed_world

HEARTBEAT = "/edge/v1/terminals/heartbeat"


@pytest.fixture
def op(http, container, world) -> OperatorClient:  # type: ignore[no-untyped-def]
    return operator_for(http, card_services(container), world.merchant_id)


def _raw(terminal_id: str) -> dict:
    return dict(TerminalModel.get(terminal_id, consistent_read=True).attribute_values)


def _listed(op: OperatorClient) -> dict[str, dict]:
    status, body = op.call("GET", "/cards/v1/terminals")
    assert status == 200, body
    return {t["terminal_id"]: t for t in body["terminals"]}


def test_report_then_read_back(edge, op, world, clock) -> None:
    first, second = sorted(world.terminals)
    now = int(clock.now())
    before = _listed(op)
    assert before[first]["status_reported_at"] is None and before[first]["agent_offline_pending"] is None
    answer = edge.post(HEARTBEAT, {"terminals": [
        {"terminal_id": first, "online": True, "last_seen": now - 5, "offline_pending": 3,
         "terminal_offline_pending": 7},
        {"terminal_id": second, "online": False, "last_seen": 0, "offline_pending": 0, "terminal_offline_pending": 0}]})
    assert answer.status_code == 200, answer.body
    assert json.loads(answer.body)["updated"] == 2
    listed = _listed(op)
    assert sorted(listed) == [first, second]  # only this merchant's terminals
    assert listed[first] == {
        "terminal_id": first, "name": "", "site_id": world.site_id, "status": "active", "online": True,
        "last_seen_at": now - 5, "terminal_offline_pending": 7, "agent_offline_pending": 3,
        "status_reported_at": now}
    assert (listed[second]["online"], listed[second]["agent_offline_pending"], listed[second]["status_reported_at"]
            ) == (False, 0, now)

    # A later report from an agent that does not send the counts: they are unknown now, not stale.
    clock.advance(30)
    edge.post(HEARTBEAT, {"terminals": [{"terminal_id": first, "online": True, "last_seen": now + 20}]})
    again = _listed(op)[first]
    assert (again["agent_offline_pending"], again["terminal_offline_pending"], again["status_reported_at"],
            again["last_seen_at"]) == (None, None, now + 30, now + 20)


def test_operators_see_only_their_own_terminals(http, container, op, world) -> None:
    other = seed_world(container, terminal_count=1)
    assert other.terminal_id not in _listed(op)
    for headers in ({}, {"X-ScanPay-Merchant": world.merchant_id, "Authorization": "Bearer wrong"},
                    {"X-ScanPay-Merchant": other.merchant_id, "Authorization": f"Bearer {op.token}"}):
        answer = http.get("/cards/v1/terminals", headers=headers)
        assert answer.status_code == 401
        assert json.loads(answer.body)["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("bad", [
    {"offline_pending": -1}, {"offline_pending": 1.5}, {"offline_pending": "3"}, {"offline_pending": True},
    {"terminal_offline_pending": -2}, {"terminal_offline_pending": [1]}, {"terminal_offline_pending": 10**8},
])
def test_malformed_counts_are_refused_and_nothing_is_stored(edge, world, clock, bad) -> None:
    first, second = sorted(world.terminals)
    now = int(clock.now())
    before = (_raw(first), _raw(second))
    answer = edge.post(HEARTBEAT, {"terminals": [
        {"terminal_id": first, "online": True, "last_seen": now, "offline_pending": 1},  # valid, comes first
        {"terminal_id": second, "online": True, "last_seen": now, **bad}]})
    assert answer.status_code == 400
    body = json.loads(answer.body)
    assert body["code"] == "INVALID_REQUEST" and next(iter(bad)) in body["message"]
    assert (_raw(first), _raw(second)) == before


def test_foreign_terminal_is_named_skipped_and_nothing_is_stored_for_it(edge, container, world, clock) -> None:
    other = seed_world(container, terminal_count=1)
    before = _raw(other.terminal_id)
    answer = edge.post(HEARTBEAT, {"terminals": [
        {"terminal_id": other.terminal_id, "online": True, "last_seen": int(clock.now()), "offline_pending": 9,
         "terminal_offline_pending": 9}]})
    assert answer.status_code == 200
    assert json.loads(answer.body)["skipped"] == [other.terminal_id]
    assert _raw(other.terminal_id) == before
