"""The signed edge API: orders per (terminal, txn), authentication, and bad input that changes nothing."""
from __future__ import annotations

import json

import pytest

from tests.support.edge_client import signed_headers
from tests.support.state import snapshot

QR = "/edge/v1/orders/qr"


def test_create_aggregated_qr_order(edge, world, clock) -> None:
    answer = edge.post(QR, {"terminal_id": world.terminal_id, "txn": 1, "amount_fen": 1250})
    assert answer.status_code == 200, answer.body
    body = json.loads(answer.body)
    assert body["ok"] is True
    assert body["qr"] == f"http://127.0.0.1:8000/pay/{body['order_id']}"
    assert body["expires_in"] == 300 and body["amount_fen"] == 1250
    state = snapshot(world.terminal_id)
    assert [(o["order_id"], o["status"], o["amount_fen"]) for o in state["orders"]] == [(body["order_id"], "CREATED", 1250)]
    assert state["txn_dedupe"] == [f"txn#{world.terminal_id}#1"]
    assert state["ledger"][body["order_id"]] == []


def test_retried_create_returns_the_same_order(edge, world, clock) -> None:
    first = json.loads(edge.post(QR, {"terminal_id": world.terminal_id, "txn": 7, "amount_fen": 500}).body)
    clock.advance(3)
    again = json.loads(edge.post(QR, {"terminal_id": world.terminal_id, "txn": 7, "amount_fen": 500}).body)
    assert again["order_id"] == first["order_id"] and again["qr"] == first["qr"]
    assert again["expires_in"] == 297
    assert len(snapshot(world.terminal_id)["orders"]) == 1


def test_same_txn_with_another_amount_is_refused(edge, world) -> None:
    edge.post(QR, {"terminal_id": world.terminal_id, "txn": 8, "amount_fen": 500})
    before = snapshot(world.terminal_id)
    answer = edge.post(QR, {"terminal_id": world.terminal_id, "txn": 8, "amount_fen": 501})
    assert answer.status_code == 409
    assert json.loads(answer.body)["code"] == "CONFLICT"
    assert snapshot(world.terminal_id) == before


def test_channel_qr_order_for_one_wallet(edge, world, fake_channels) -> None:
    body = json.loads(edge.post(QR, {"terminal_id": world.terminal_id, "txn": 9, "amount_fen": 300,
                                     "wallet": "alipay"}).body)
    assert body["qr"] == f"fake://alipay/{body['order_id']}"
    assert fake_channels.by_wallet["alipay"].calls == [("create_native_qr", body["order_id"])]
    assert snapshot(world.terminal_id)["orders"][0]["opened_wallets"] == ["alipay"]


@pytest.mark.parametrize("amount", [0, -1, True, "100", 1.5, None, 10**9])
def test_bad_amount_changes_nothing(edge, world, amount) -> None:
    answer = edge.post(QR, {"terminal_id": world.terminal_id, "txn": 2, "amount_fen": amount})
    assert answer.status_code == 400
    assert json.loads(answer.body)["code"] in ("ERR009", "INVALID_REQUEST")
    assert snapshot(world.terminal_id) == {"orders": [], "ledger": {}, "txn_dedupe": []}


@pytest.mark.parametrize("payload", [{}, {"terminal_id": 5, "txn": 1, "amount_fen": 1}, {"txn": 1, "amount_fen": 1}])
def test_missing_or_mistyped_fields(edge, world, payload) -> None:
    answer = edge.post(QR, payload)
    assert answer.status_code in (400, 404)
    assert snapshot(world.terminal_id)["orders"] == []


def test_channel_that_does_not_answer_creates_nothing(edge, world, fake_channels) -> None:
    from chalicelib.channels.base import ChannelState

    fake_channels.by_wallet["wechat"].next_answer["create_native_qr"] = ChannelState.UNKNOWN
    answer = edge.post(QR, {"terminal_id": world.terminal_id, "txn": 3, "amount_fen": 100, "wallet": "wechat"})
    assert answer.status_code == 503
    assert json.loads(answer.body)["code"] == "ERR012"
    assert snapshot(world.terminal_id)["orders"] == []


class TestAuthentication:
    def _post(self, http, headers, body: bytes):  # type: ignore[no-untyped-def]
        return http.post(QR, headers=headers, body=body)

    def _body(self, world) -> bytes:  # type: ignore[no-untyped-def]
        return json.dumps({"terminal_id": world.terminal_id, "txn": 1, "amount_fen": 100}).encode()

    def test_bad_signature_is_401_and_changes_nothing(self, http, world, clock) -> None:
        body = self._body(world)
        headers = signed_headers(world.agent_id, "not-the-secret", "POST", QR, body, clock.now())
        answer = self._post(http, headers, body)
        assert answer.status_code == 401
        assert json.loads(answer.body)["code"] == "UNAUTHORIZED"
        assert snapshot(world.terminal_id)["orders"] == []

    def test_body_changed_after_signing(self, http, world, clock) -> None:
        body = self._body(world)
        headers = signed_headers(world.agent_id, world.agent_secret, "POST", QR, body, clock.now())
        answer = self._post(http, headers, body.replace(b"100", b"900"))
        assert answer.status_code == 401
        assert snapshot(world.terminal_id)["orders"] == []

    def test_signature_for_another_path(self, http, world, clock) -> None:
        body = self._body(world)
        headers = signed_headers(world.agent_id, world.agent_secret, "POST", "/edge/v1/orders/scan", body, clock.now())
        assert self._post(http, headers, body).status_code == 401

    @pytest.mark.parametrize("skew", [-301, 301])
    def test_stale_or_future_timestamp(self, http, world, clock, skew) -> None:
        body = self._body(world)
        headers = signed_headers(world.agent_id, world.agent_secret, "POST", QR, body, clock.now() + skew)
        assert self._post(http, headers, body).status_code == 401
        assert snapshot(world.terminal_id)["orders"] == []

    def test_reused_nonce_is_refused(self, http, world, clock) -> None:
        body = self._body(world)
        headers = signed_headers(world.agent_id, world.agent_secret, "POST", QR, body, clock.now(), nonce="n" * 24)
        assert self._post(http, headers, body).status_code == 200
        before = snapshot(world.terminal_id)
        replay = self._post(http, headers, body)
        assert replay.status_code == 401
        assert json.loads(replay.body)["message"] == "nonce already used"
        assert snapshot(world.terminal_id) == before

    def test_unknown_agent_and_missing_headers(self, http, world, clock) -> None:
        body = self._body(world)
        headers = signed_headers("E-NOBODY", world.agent_secret, "POST", QR, body, clock.now())
        assert self._post(http, headers, body).status_code == 401
        assert self._post(http, {"Content-Type": "application/json"}, body).status_code == 401

    def test_foreign_tenants_terminal_is_not_found(self, http, container, world, clock) -> None:
        from tests.support.world import seed_world

        other = seed_world(container)
        body = json.dumps({"terminal_id": other.terminal_id, "txn": 1, "amount_fen": 100}).encode()
        headers = signed_headers(world.agent_id, world.agent_secret, "POST", QR, body, clock.now())
        answer = self._post(http, headers, body)
        assert answer.status_code == 404
        assert json.loads(answer.body)["code"] == "NOT_FOUND"
        assert snapshot(other.terminal_id)["orders"] == []
