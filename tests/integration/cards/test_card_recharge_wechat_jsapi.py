"""Online recharge paid in WeChat (JSAPI), through the API against the sandbox's WeChat Pay v2.

The real stack: Chalice test client -> OnlineRechargeService -> WeChatJsapi -> the wechat_v2 channel
built from the merchant's KMS-sealed settings -> the sandbox's unifiedorder trade_type=JSAPI; the
holder confirms in WeChat (POST /sandbox/jsapi/pay), the sandbox posts the signed notification to
our notify URL, which recharge_stack's loopback receiver catches so the test hands it to
/cards/notify/{merchant} (and replays it, as WeChat does until acknowledged).
"""
from __future__ import annotations

import json
from typing import Iterator

import pytest

from chalicelib.container import Container
from chalicelib.services.card_container import card_services
from chalicelib.store.card_recharges import CREATED, PAID
from recharge_stack import assert_credited_once, pay_in_sandbox, started_sandbox, wechat_merchant
from recharge_stack import http, receiver, stack  # noqa: F401  (fixtures)
from sandbox import wechat_v2 as platform
from sandbox.server import Sandbox
from tests.support.card_world import card_snapshot
from tests.support.ledger_invariants import check_card_ledger

APPID, MCH_ID = "wx5555555555555555", "1900000555"
CARD, START_FEN, RECHARGE_FEN = "72000001", 1_000, 5_000
HOLDER_OPENID = platform.openid(APPID, "zhaoliu")  # what the 服务号 OAuth gives this holder
XML = {"Content-Type": "text/xml"}


@pytest.fixture(scope="module")
def merchant_account() -> dict:
    return platform.make_merchant(APPID)


@pytest.fixture(scope="module")
def sandbox(merchant_account: dict) -> Iterator[Sandbox]:
    accounts = {platform.NAME: platform.make_accounts_section({MCH_ID: merchant_account})}
    box = started_sandbox(accounts, "sandbox.wechat_v2")
    yield box
    box.stop()


@pytest.fixture
def merchant(stack: Container, merchant_account: dict) -> str:
    return wechat_merchant(stack, merchant_account, APPID, MCH_ID, CARD, START_FEN, HOLDER_OPENID)


def _start(http, merchant_id: str, openid: str = HOLDER_OPENID):  # type: ignore[no-untyped-def]
    return http.post(f"/cards/v1/wechat/{merchant_id}/recharge", headers={"Content-Type": "application/json"},
                     body=json.dumps({"openid": openid, "amount_fen": RECHARGE_FEN}))


def _notify(http, merchant_id: str, body: bytes) -> bytes:  # type: ignore[no-untyped-def]
    answer = http.post(f"/cards/notify/{merchant_id}", headers=XML, body=body)
    assert answer.status_code == 200
    return answer.body


def test_wechat_jsapi_recharge_lands_exactly_once(http, stack, merchant, sandbox, receiver, merchant_account):
    started = _start(http, merchant)
    assert started.status_code == 201, started.body
    answer = json.loads(started.body)
    recharge_id, params = answer["recharge_id"], answer["jsapi"]
    assert answer["amount_fen"] == RECHARGE_FEN
    assert params["appId"] == APPID and params["package"].startswith("prepay_id=wx")
    unsigned = {k: v for k, v in params.items() if k != "paySign"}
    assert params["paySign"] == platform.sign(unsigned, merchant_account["api_key"])  # what WeixinJSBridge checks
    recharges = card_services(stack).recharges
    assert recharges.get(recharge_id).status == CREATED
    assert check_card_ledger(merchant).balances_fen == START_FEN  # nothing booked before the payment

    prepay_id = params["package"].removeprefix("prepay_id=")
    body = pay_in_sandbox(sandbox, receiver, "/sandbox/jsapi/pay", {"prepay_id": prepay_id})
    assert b"SUCCESS" in _notify(http, merchant, body)
    paid = recharges.get(recharge_id)
    assert paid.status == PAID and paid.wallet == "wechat" and paid.trade_no
    assert_credited_once(merchant, CARD, recharge_id, START_FEN, RECHARGE_FEN)
    after = card_snapshot(merchant, [CARD])

    for _ in range(3):  # WeChat repeats until acknowledged; every repeat books nothing
        assert b"SUCCESS" in _notify(http, merchant, body)
    assert card_snapshot(merchant, [CARD]) == after
    assert_credited_once(merchant, CARD, recharge_id, START_FEN, RECHARGE_FEN)


def test_unbound_openid_starts_nothing(http, stack, merchant, sandbox):
    before = card_snapshot(merchant, [CARD])
    trades = len(list(sandbox.ctx.book.all()))
    assert _start(http, merchant, openid=platform.openid(APPID, "stranger")).status_code == 404
    assert card_snapshot(merchant, [CARD]) == before
    assert len(list(sandbox.ctx.book.all())) == trades  # no prepay was asked for
    assert check_card_ledger(merchant).balances_fen == START_FEN
