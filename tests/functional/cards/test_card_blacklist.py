"""The versioned blacklist edge agents fetch: deltas, the whole list when new or far behind, acks."""
from __future__ import annotations

import json

from chalicelib.store.card_blacklist import BlacklistStore
from tests.support.card_world import issue_card, operator_for

BL = "/edge/v1/cards/blacklist"


def _fetch(edge, after: int) -> dict:  # type: ignore[no-untyped-def]
    answer = edge.post(BL, {"after_version": after})
    assert answer.status_code == 200
    return json.loads(answer.body)


def test_deltas_and_the_whole_list(edge, world, cs) -> None:
    for n in range(1, 4):
        issue_card(cs, world.merchant_id, f"3000000{n}")
    assert _fetch(edge, 0) == {"ok": True, "version": 0, "full": False, "add": [], "remove": []}
    cs.admin.report_lost(world.merchant_id, "30000001")  # v1
    cs.admin.report_lost(world.merchant_id, "30000002")  # v2
    cs.admin.report_found(world.merchant_id, "30000001")  # v3
    cs.admin.cancel(world.merchant_id, "30000003")  # v4
    assert _fetch(edge, 0) == {"ok": True, "version": 4, "full": True, "add": ["30000002", "30000003"], "remove": []}
    assert _fetch(edge, 1) == {"ok": True, "version": 4, "full": False, "add": ["30000002", "30000003"],
                               "remove": ["30000001"]}
    assert _fetch(edge, 3)["add"] == ["30000003"]
    assert _fetch(edge, 4) == {"ok": True, "version": 4, "full": False, "add": [], "remove": []}
    assert _fetch(edge, 99)["full"] is True  # a version never issued: start over


def test_far_behind_gets_the_whole_list(world, cs) -> None:
    for n in (1, 2, 3):
        issue_card(cs, world.merchant_id, f"3000000{n}")
    cs.admin.report_lost(world.merchant_id, "30000001")  # v1
    cs.admin.report_found(world.merchant_id, "30000001")  # v2
    cs.admin.report_lost(world.merchant_id, "30000002")  # v3
    cs.admin.report_lost(world.merchant_id, "30000003")  # v4
    store = BlacklistStore(max_delta=2)
    near = store.since(world.merchant_id, 2)
    assert (near.version, near.full, near.add, near.remove) == (4, False, ["30000002", "30000003"], [])
    far = store.since(world.merchant_id, 1)  # 3 changes behind
    assert (far.version, far.full, far.add, far.remove) == (4, True, ["30000002", "30000003"], [])


def test_acks_show_who_is_behind(edge, world, cs, http) -> None:
    issue_card(cs, world.merchant_id, "30000001")
    cs.admin.report_lost(world.merchant_id, "30000001")
    first, second = list(world.terminals)
    assert edge.post(BL + "/ack", {"terminal_id": first, "version": 1}).status_code == 200
    assert edge.post(BL + "/ack", {"terminal_id": second, "version": 0}).status_code == 200
    assert edge.post(BL + "/ack", {"terminal_id": first, "version": 0}).status_code == 200  # late: ignored
    assert edge.post(BL + "/ack", {"terminal_id": first, "version": 5}).status_code == 400  # never issued
    assert edge.post(BL + "/ack", {"terminal_id": "T-NOT-OURS", "version": 1}).status_code == 404
    status, body = operator_for(http, cs, world.merchant_id).call("GET", "/cards/v1/blacklist/status")
    assert body == {"latest": 1, "terminals": {first: {"version": 1, "behind": False},
                                               second: {"version": 0, "behind": True}}}


def test_concurrent_changes_take_distinct_versions(world, cs, container) -> None:
    """Two changes that read the same head: the second's transaction fails on the head and retries."""
    from chalicelib.domain.cards import CardStatus
    from chalicelib.store.card_lifecycle import StatusChange

    issue_card(cs, world.merchant_id, "30000001")
    issue_card(cs, world.merchant_id, "30000002")
    stale_read = cs.blacklist.latest(world.merchant_id)
    cs.admin.report_lost(world.merchant_id, "30000001")
    card = cs.cards.get(world.merchant_id, "30000002")

    class StaleHead(type(cs.blacklist)):  # the first attempt sees the head from before
        calls = 0

        def latest(self, merchant_id: str) -> int:
            StaleHead.calls += 1
            return stale_read if StaleHead.calls == 1 else super().latest(merchant_id)

    from chalicelib.store.card_lifecycle import CardLifecycleStore

    lifecycle = CardLifecycleStore(container.settings, StaleHead())
    version = lifecycle.change_status(StatusChange(card, CardStatus.LOST, "add"), container.clock.now())
    assert version == 2 and StaleHead.calls == 2
    assert cs.blacklist.since(world.merchant_id, 0).add == ["30000001", "30000002"]
