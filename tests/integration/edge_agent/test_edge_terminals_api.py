"""POST /edge/v1/terminals and /edge/v1/terminals/heartbeat against DynamoDB (moto) and KMS."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.store.models import TerminalModel
from edge_agent.keybox import box_key, open_box
from tests.support.edge_client import EdgeTestClient, signed_headers
from tests.support.world import seed_world

LIST, HEARTBEAT = "/edge/v1/terminals", "/edge/v1/terminals/heartbeat"


@pytest.fixture
def edge(http, world):  # type: ignore[no-untyped-def]
    class Now:
        @staticmethod
        def now() -> float:
            return time.time()

    return EdgeTestClient(http, world.agent_id, world.agent_secret, Now)


def _link(terminal_id: str) -> tuple[bool, int]:
    item = TerminalModel.get(terminal_id, consistent_read=True)
    return bool(item.online), int(item.last_seen_at or 0)


def test_terminal_keys_travel_only_in_boxes_the_agent_opens(edge, world) -> None:
    answer = edge.post(LIST, {})
    assert answer.status_code == 200
    body = json.loads(answer.body)
    assert body["ok"] is True and body["merchant_name"].startswith("Canteen ")
    assert sorted(t["terminal_id"] for t in body["terminals"]) == sorted(world.terminals)
    for key in world.terminals.values():
        assert key.encode() not in answer.body  # no key in clear anywhere in the answer
    opened = {t["terminal_id"]: open_box(box_key(world.agent_secret, world.agent_id), world.agent_id,
                                         t["terminal_id"], t["key_box"]) for t in body["terminals"]}
    assert opened == world.terminals
    boxes_again = {t["key_box"] for t in json.loads(edge.post(LIST, {}).body)["terminals"]}
    assert boxes_again.isdisjoint(t["key_box"] for t in body["terminals"])  # a fresh nonce every time


def test_another_agent_gets_only_its_own_terminals(http, live_container, world) -> None:
    other = seed_world(live_container, terminal_count=1)
    body = json.dumps({}).encode()
    headers = signed_headers(other.agent_id, other.agent_secret, "POST", LIST, body, time.time())
    answer = json.loads(http.post(LIST, headers=headers, body=body).body)
    assert [t["terminal_id"] for t in answer["terminals"]] == list(other.terminals)


def test_unsigned_requests_are_refused(http, world) -> None:
    for path in (LIST, HEARTBEAT):
        answer = http.post(path, headers={"Content-Type": "application/json"}, body=b"{}")
        assert answer.status_code == 401


def test_heartbeat_records_online_status(edge, world, live_container) -> None:
    first, second = sorted(world.terminals)
    now = int(time.time())
    answer = edge.post(HEARTBEAT, {"terminals": [
        {"terminal_id": first, "online": True, "last_seen": now - 5, "offline_pending": 2},
        {"terminal_id": second, "online": False, "last_seen": 0}]})
    assert answer.status_code == 200, answer.body
    body = json.loads(answer.body)
    assert body["updated"] == 2 and body["skipped"] == [] and abs(body["server_time"] - now) <= 5
    assert _link(first) == (True, now - 5) and _link(second) == (False, 0)
    # a report older than the stored one (out of order) does not move last_seen back: it is stale
    stale = json.loads(edge.post(HEARTBEAT, {"terminals": [
        {"terminal_id": first, "online": False, "last_seen": now - 60}]}).body)
    assert (stale["stale"], stale["skipped"], stale["updated"]) == ([first], [], 0)
    assert _link(first) == (True, now - 5)


def test_heartbeat_older_by_reported_at_is_stale_through_real_dynamodb(edge, world) -> None:
    first = sorted(world.terminals)[0]
    sent_s = int(time.time())
    agent_ms = int(time.time() * 1000) + 120_000  # the agent's clock runs 2 minutes ahead of the cloud's
    newer = {"reported_at": agent_ms, "terminals": [
        {"terminal_id": first, "online": True, "last_seen": sent_s, "offline_pending": 0}]}
    older = {"reported_at": agent_ms - 1500, "terminals": [
        {"terminal_id": first, "online": True, "last_seen": sent_s, "offline_pending": 4}]}
    assert json.loads(edge.post(HEARTBEAT, newer).body)["updated"] == 1
    stored = dict(TerminalModel.get(first, consistent_read=True).attribute_values)
    # The report's own time orders; status_reported_at (what operators see) is the cloud's whole seconds.
    assert stored["status_report_ms"] == agent_ms and stored["agent_offline_pending"] == 0
    assert stored["status_reported_at"] == int(stored["status_reported_at"])
    assert sent_s <= stored["status_reported_at"] <= time.time()

    late = json.loads(edge.post(HEARTBEAT, older).body)  # the retry of an older report lands last
    assert (late["updated"], late["stale"]) == (0, [first])
    assert dict(TerminalModel.get(first, consistent_read=True).attribute_values) == stored

    # A millisecond later is newer: stored.
    later = {"reported_at": agent_ms + 1, "terminals": [
        {"terminal_id": first, "online": False, "last_seen": sent_s, "offline_pending": 2}]}
    assert json.loads(edge.post(HEARTBEAT, later).body)["updated"] == 1
    assert TerminalModel.get(first, consistent_read=True).status_report_ms == agent_ms + 1
    after_later = dict(TerminalModel.get(first, consistent_read=True).attribute_values)

    # Seconds sent for milliseconds: refused, nothing written.
    bad = {"reported_at": sent_s + 600, "terminals": later["terminals"]}
    answer = edge.post(HEARTBEAT, bad)
    assert answer.status_code == 400 and "reported_at" in json.loads(answer.body)["message"]
    assert dict(TerminalModel.get(first, consistent_read=True).attribute_values) == after_later


def test_heartbeat_skips_terminals_of_other_agents(edge, world, live_container) -> None:
    other = seed_world(live_container, terminal_count=1)
    foreign = other.terminal_id
    body = json.loads(edge.post(HEARTBEAT, {"terminals": [
        {"terminal_id": foreign, "online": True, "last_seen": int(time.time())},
        {"terminal_id": "T-NOBODY", "online": True, "last_seen": int(time.time())}]}).body)
    assert body["updated"] == 0 and body["skipped"] == [foreign, "T-NOBODY"]
    assert _link(foreign) == (False, 0)
    with pytest.raises(TerminalModel.DoesNotExist):
        TerminalModel.get("T-NOBODY")  # nothing was created


@pytest.mark.parametrize("reports", [
    None, "T1", [{"terminal_id": "X", "online": "yes", "last_seen": 1}],
    [{"online": True, "last_seen": 1}], [{"terminal_id": "X", "online": True, "last_seen": 1.5}],
    [{"terminal_id": "X", "online": True, "last_seen": 10**12}],  # far in the future
])
def test_malformed_heartbeat_changes_nothing(edge, world, reports) -> None:
    first = sorted(world.terminals)[0]
    valid_first = {"terminal_id": first, "online": True, "last_seen": int(time.time())}
    payload = {"terminals": [valid_first, *reports] if isinstance(reports, list) else reports}
    answer = edge.post(HEARTBEAT, payload)
    assert answer.status_code == 400
    assert json.loads(answer.body)["code"] == "INVALID_REQUEST"
    assert _link(first) == (False, 0)  # the valid first item was not written either
