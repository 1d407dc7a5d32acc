"""The demo cards of DESIGN.md on the local stack, paid through the signed edge API."""
from __future__ import annotations

import time

from devstack import demo
from devstack.stack import LocalStack
from tests.e2e.conftest import signed_post


def test_demo_card_pays_and_lost_card_is_refused(stack: LocalStack) -> None:
    txn = int(time.time() * 1000) % 1_000_000_000
    paid = signed_post(stack, "/edge/v1/cards/pay", {"terminal_id": "T0001", "txn": txn, "card": "10000001",
                                                     "amount_fen": 1250, "ts": int(time.time())})
    assert paid.status_code == 200, paid.text
    assert (paid.json()["ok"], paid.json()["code"], paid.json()["balance_fen"]) == (True, "OK", demo.CARD_BALANCE_FEN - 1250)
    repeat = signed_post(stack, "/edge/v1/cards/pay", {"terminal_id": "T0001", "txn": txn, "card": "10000001",
                                                       "amount_fen": 1250, "ts": int(time.time())})
    assert repeat.json()["balance_fen"] == demo.CARD_BALANCE_FEN - 1250  # the first answer, not a second charge
    lost = signed_post(stack, "/edge/v1/cards/pay", {"terminal_id": "T0001", "txn": txn + 1, "card": demo.LOST_CARD,
                                                     "amount_fen": 100, "ts": int(time.time())})
    assert (lost.json()["ok"], lost.json()["code"]) == (False, "ERR008")
    from chalicelib.services.card_container import card_services

    admin = card_services(stack.container).admin
    assert admin.card(demo.MERCHANT_ID, "10000001").balance_fen == demo.CARD_BALANCE_FEN - 1250
    assert admin.card(demo.MERCHANT_ID, "10000002").balance_fen == demo.CARD_BALANCE_FEN


def test_demo_operator_token_opens_the_counter_routes(stack: LocalStack) -> None:
    import httpx

    headers = {"X-ScanPay-Merchant": demo.MERCHANT_ID, "Authorization": f"Bearer {demo.OPERATOR_TOKEN}"}
    card = httpx.get(f"{stack.api_url}/cards/v1/cards/10000002", headers=headers)
    assert card.status_code == 200, card.text
    assert card.json()["card_no"] == "10000002"
    terminals = httpx.get(f"{stack.api_url}/cards/v1/terminals", headers=headers)
    assert terminals.status_code == 200, terminals.text
    assert {"T0001", "T0002"} <= {t["terminal_id"] for t in terminals.json()["terminals"]}
    wrong = httpx.get(f"{stack.api_url}/cards/v1/terminals", headers=headers | {"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
