"""Terminal link status with the offline counts the edge agents report (POST /edge/v1/terminals/heartbeat),
read back by the merchant's operators (GET /cards/v1/terminals). A malformed report stores nothing; a
report older than the stored one (by its reported_at, Unix ms, kept as status_report_ms) is answered stale
and stores nothing. Operators' status_reported_at is the cloud's clock when the report was stored."""
from __future__ import annotations

import json

import pytest

from chalicelib.services.card_container import card_services
from chalicelib.services.edge_link import MAX_FUTURE_SKEW_S
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
    assert _raw(first)["status_report_ms"] == now * 1000  # no reported_at: ordered by its arrival

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


def _line(terminal_id: str, last_seen: int, pending: int) -> dict:
    return {"terminal_id": terminal_id, "online": True, "last_seen": last_seen, "offline_pending": pending,
            "terminal_offline_pending": pending}


def test_a_late_older_report_is_stale_and_changes_nothing(edge, op, world, clock) -> None:
    first, second = sorted(world.terminals)
    now = int(clock.now())
    t_ms = (now + 120) * 1000  # the agent's clock runs 2 minutes ahead of ours (within the allowed skew)
    newer = {"reported_at": t_ms + 1_250, "terminals": [_line(first, now - 3, 0), _line(second, now - 3, 0)]}
    older = {"reported_at": t_ms, "terminals": [_line(first, now - 3, 5), _line(second, now - 3, 5)]}
    answer = json.loads(edge.post(HEARTBEAT, newer).body)
    assert (answer["updated"], answer["stale"], answer["skipped"]) == (2, [], [])
    stored = (_raw(first), _raw(second))
    # The report's own time orders the reports; operators' status_reported_at is our clock on arrival.
    assert (stored[0]["status_report_ms"], stored[0]["status_reported_at"]) == (t_ms + 1_250, now)

    # The HTTP retry of the older report lands after the newer one: its counts (5) are not stored.
    clock.advance(2)
    late = edge.post(HEARTBEAT, older)
    assert late.status_code == 200, late.body
    assert json.loads(late.body) == {"ok": True, "updated": 0, "skipped": [], "stale": [first, second],
                                     "server_time": now + 2}
    assert (_raw(first), _raw(second)) == stored
    # A repeat of the stored report is not newer either.
    assert json.loads(edge.post(HEARTBEAT, newer).body)["stale"] == [first, second]
    assert (_raw(first), _raw(second)) == stored

    # Operators see the newer report, with the cloud's time when it was stored (not the agent's, 2 min ahead).
    listed = _listed(op)[first]
    assert (listed["agent_offline_pending"], listed["terminal_offline_pending"], listed["last_seen_at"],
            listed["status_reported_at"]) == (0, 0, now - 3, now)

    # Reports a millisecond apart still order: the later one is stored, shown with the cloud's time now.
    later = {"reported_at": t_ms + 1_251, "terminals": [_line(first, now - 1, 2)]}
    assert json.loads(edge.post(HEARTBEAT, later).body)["updated"] == 1
    listed = _listed(op)[first]
    assert (listed["agent_offline_pending"], listed["status_reported_at"]) == (2, now + 2)
    assert _raw(first)["status_report_ms"] == t_ms + 1_251 and _raw(second) == stored[1]


def test_report_without_reported_at_is_ordered_by_arrival(edge, op, world, clock) -> None:
    """An older agent: its reports are ordered by the cloud's clock when they arrive."""
    first = sorted(world.terminals)[0]
    now = int(clock.now())
    # A newer agent's report taken 10 s ahead of the cloud's clock (within the allowed skew) ...
    ahead = {"reported_at": (now + 10) * 1000, "terminals": [_line(first, now, 1)]}
    assert json.loads(edge.post(HEARTBEAT, ahead).body)["updated"] == 1
    assert _listed(op)[first]["status_reported_at"] == now  # the cloud's time, not the agent's now + 10
    # ... wins over an older agent's report that arrives before that time ...
    clock.advance(5)
    before = _raw(first)
    early = json.loads(edge.post(HEARTBEAT, {"terminals": [_line(first, now + 5, 3)]}).body)
    assert early["stale"] == [first] and _raw(first) == before
    assert (_listed(op)[first]["agent_offline_pending"], _listed(op)[first]["status_reported_at"]) == (1, now)
    # ... and an older agent's report that arrives later is stored, ordered by its arrival in ms.
    clock.advance(6)
    assert json.loads(edge.post(HEARTBEAT, {"terminals": [_line(first, now + 11, 3)]}).body)["updated"] == 1
    listed = _listed(op)[first]
    assert (listed["agent_offline_pending"], listed["status_reported_at"]) == (3, now + 11)
    assert _raw(first)["status_report_ms"] == (now + 11) * 1000


def test_agent_restart_report_keeps_the_last_seen_it_does_not_know(edge, op, world, clock) -> None:
    """last_seen 0 (not seen since the agent started) leaves the stored one; the counts are stored."""
    first = sorted(world.terminals)[0]
    now = int(clock.now())
    edge.post(HEARTBEAT, {"reported_at": now * 1000 - 1, "terminals": [_line(first, now - 30, 4)]})
    restarted = {"reported_at": now * 1000, "terminals": [
        {"terminal_id": first, "online": False, "last_seen": 0, "offline_pending": 4, "terminal_offline_pending": 0}]}
    assert json.loads(edge.post(HEARTBEAT, restarted).body)["updated"] == 1
    listed = _listed(op)[first]
    assert (listed["online"], listed["last_seen_at"], listed["terminal_offline_pending"]) == (False, now - 30, 0)


@pytest.mark.parametrize("reported_at", [
    "1764000000000", 1764000000000.5, True, -1, 0, 1_764_000_000,  # seconds, not milliseconds
    {"ms": 1795000000000}, [1], "far future",
])
def test_bad_reported_at_is_refused_and_nothing_is_stored(edge, world, clock, reported_at) -> None:
    first, second = sorted(world.terminals)
    now = int(clock.now())
    if reported_at == "far future":
        reported_at = (now + MAX_FUTURE_SKEW_S + 1) * 1000
    edge.post(HEARTBEAT, {"reported_at": now * 1000 - 5_000, "terminals": [_line(first, now - 5, 1)]})
    before = (_raw(first), _raw(second))
    assert (before[0]["status_report_ms"], before[0]["status_reported_at"]) == (now * 1000 - 5_000, now)
    answer = edge.post(HEARTBEAT, {"reported_at": reported_at, "terminals": [
        _line(first, now, 9), _line(second, now, 9)]})
    assert answer.status_code == 400, answer.body
    body = json.loads(answer.body)
    assert body["code"] == "INVALID_REQUEST" and "reported_at" in body["message"]
    assert (_raw(first), _raw(second)) == before


def test_reported_at_at_the_allowed_skew_is_taken(edge, op, world, clock) -> None:
    first = sorted(world.terminals)[0]
    now = int(clock.now())
    answer = edge.post(HEARTBEAT, {"reported_at": (now + MAX_FUTURE_SKEW_S) * 1000,
                                   "terminals": [_line(first, now, 1)]})
    assert json.loads(answer.body)["updated"] == 1
    # An agent clock 5 minutes ahead orders its reports, but operators still see the cloud's time.
    assert _listed(op)[first]["status_reported_at"] == now
    assert _raw(first)["status_report_ms"] == (now + MAX_FUTURE_SKEW_S) * 1000
