"""An expired licence stops new QR orders (ERR011) after its grace period, and nothing else."""
from __future__ import annotations

import json

from tests.support.state import snapshot

QR = "/edge/v1/orders/qr"
DAY = 86_400


def test_qr_orders_refused_after_grace_but_not_within_it(edge, world, container, clock) -> None:
    renewed = container.licences.renew(world.merchant_id, 1)
    assert renewed["recorded"] is True and renewed["fee_fen"] == 250_000  # first year: 2500 CNY to the dealer
    clock.advance(366 * DAY + 10 * DAY)  # expired, within the 15-day grace period
    container.licences._cache.clear()  # a new container, as the next Lambda would be
    within = edge.post(QR, {"terminal_id": world.terminal_id, "txn": 1, "amount_fen": 100})
    assert within.status_code == 200, within.body
    clock.advance(6 * DAY)  # grace over
    container.licences._cache.clear()
    before = snapshot(world.terminal_id)
    refused = edge.post(QR, {"terminal_id": world.terminal_id, "txn": 2, "amount_fen": 100})
    assert refused.status_code == 409
    assert json.loads(refused.body)["code"] == "ERR011"
    assert snapshot(world.terminal_id) == before
    # A retry of an order created before the cut-off still gets its order back.
    again = edge.post(QR, {"terminal_id": world.terminal_id, "txn": 1, "amount_fen": 100})
    assert again.status_code == 200


def test_unlicensed_merchant_is_allowed(edge, world) -> None:
    assert edge.post(QR, {"terminal_id": world.terminal_id, "txn": 1, "amount_fen": 100}).status_code == 200
