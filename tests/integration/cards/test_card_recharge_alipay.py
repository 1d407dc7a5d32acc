"""Online recharge paid with Alipay, through the API against the sandbox's Alipay.

The real stack: Chalice test client -> AlipayRecharge -> the alipay channel DirectoryChannels builds
from the merchant's KMS-sealed settings -> the sandbox's alipay.trade.precreate; the sandbox "consumer"
pays the QR (POST /sandbox/scan) and posts the signed notification to our notify URL, which a tiny
loopback receiver catches so the test can hand it to /cards/notify/{merchant}/alipay (and replay it).
"""
from __future__ import annotations

import json
from typing import Iterator
from urllib.parse import parse_qsl, urlencode

import pytest

from chalicelib.container import Container
from chalicelib.services.card_container import card_services
from chalicelib.store.card_recharges import CREATED, PAID
from recharge_stack import Receiver, alipay_merchant, assert_credited_once, pay_in_sandbox, started_sandbox
from recharge_stack import http, receiver, stack  # noqa: F401  (fixtures)
from sandbox.alipay import make_accounts_section, rsa2_sign, signing_text
from sandbox.server import Sandbox
from tests.support.card_world import card_snapshot
from tests.support.ledger_invariants import check_card_ledger

CARD, START_FEN, RECHARGE_FEN = "71000001", 1_000, 5_000
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@pytest.fixture(scope="module")
def section() -> dict:
    return make_accounts_section()


@pytest.fixture(scope="module")
def sandbox(section: dict) -> Iterator[Sandbox]:
    box = started_sandbox({"alipay": section}, "sandbox.alipay")
    yield box
    box.stop()


@pytest.fixture
def merchant(stack: Container, section: dict) -> str:
    return alipay_merchant(stack, section, CARD, START_FEN)


def _start(http, merchant_id: str, amount: int = RECHARGE_FEN):  # type: ignore[no-untyped-def]
    return http.post(f"/cards/v1/alipay/{merchant_id}/recharge", headers={"Content-Type": "application/json"},
                     body=json.dumps({"card_no": CARD, "number": CARD, "amount_fen": amount}))


def _pay(sandbox: Sandbox, receiver: Receiver, qr: str) -> bytes:
    """The holder scans the QR with Alipay."""
    return pay_in_sandbox(sandbox, receiver, "/sandbox/scan", {"qr": qr, "wallet": "alipay"})


def _notify(http, merchant_id: str, body: bytes) -> bytes:  # type: ignore[no-untyped-def]
    answer = http.post(f"/cards/notify/{merchant_id}/alipay", headers=FORM, body=body)
    assert answer.status_code == 200
    return answer.body


def _assert_credited_once(merchant_id: str, recharge_id: str) -> None:
    assert_credited_once(merchant_id, CARD, recharge_id, START_FEN, RECHARGE_FEN)


def test_alipay_recharge_lands_once_and_tampering_changes_nothing(http, stack, merchant, sandbox, receiver, section):
    started = _start(http, merchant)
    assert started.status_code == 201, started.body
    answer = json.loads(started.body)
    recharge_id, qr = answer["recharge_id"], answer["qr"]
    assert answer["amount_fen"] == RECHARGE_FEN and qr
    recharges = card_services(stack).recharges
    assert recharges.get(recharge_id).status == CREATED
    assert check_card_ledger(merchant).balances_fen == START_FEN  # nothing booked before the payment

    body = _pay(sandbox, receiver, qr)
    assert _notify(http, merchant, body) == b"success"
    paid = recharges.get(recharge_id)
    assert paid.status == PAID and paid.wallet == "alipay" and paid.trade_no
    assert paid.notice is None  # no bound WeChat: no 充值成功通知 to send
    _assert_credited_once(merchant, recharge_id)
    after = card_snapshot(merchant, [CARD])

    for _ in range(5):  # Alipay retries until it reads `success`; every repeat books nothing
        assert _notify(http, merchant, body) == b"success"
    assert card_snapshot(merchant, [CARD]) == after

    # Genuinely signed by the platform key, but for another amount than the stored recharge: refused.
    fields = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    fields["total_amount"] = "500.00"
    fields["sign"] = rsa2_sign(section["platform_private_key"], signing_text(fields, exclude=("sign", "sign_type")))
    assert _notify(http, merchant, urlencode(fields).encode("ascii")) == b"failure"
    # and one whose amount was edited without the key: the signature refuses it.
    forged = body.replace(b"total_amount=50.00", b"total_amount=500.00")
    assert forged != body
    assert _notify(http, merchant, forged) == b"failure"
    assert card_snapshot(merchant, [CARD]) == after
    _assert_credited_once(merchant, recharge_id)


def test_bad_start_is_refused_and_creates_nothing(http, stack, merchant):
    before = card_snapshot(merchant, [CARD])
    wrong_number = http.post(f"/cards/v1/alipay/{merchant}/recharge", headers={"Content-Type": "application/json"},
                             body=json.dumps({"card_no": CARD, "number": "nope", "amount_fen": RECHARGE_FEN}))
    assert wrong_number.status_code == 404
    assert _start(http, merchant, amount=0).status_code == 400
    assert card_snapshot(merchant, [CARD]) == before
    assert check_card_ledger(merchant).balances_fen == START_FEN
