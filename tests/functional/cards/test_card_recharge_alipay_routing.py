"""Alipay online recharge with fake channels: who gets the 充值成功通知, and that a recharge is only
paid through the wallet it was started for. (The sandbox path is tests/integration/cards/.)"""
from __future__ import annotations

import json

import pytest

from chalicelib.domain.canteen_notice import check_template
from chalicelib.services.card_container import CardServices, install_card_services
from tests.support.card_world import card_snapshot, issue_card
from tests.support.ledger_invariants import check_card_ledger

CARD, OPENID = "72000001", "o-alipay-payer-bound"


class FakeMp:
    """The 服务号 port: records each template message."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_template(self, merchant_id, openid, template_id, data, url=""):  # type: ignore[no-untyped-def]
        self.sent.append((openid, template_id))
        return 1

    def authorize_url(self, merchant_id, redirect_uri, state):  # type: ignore[no-untyped-def]
        return redirect_uri

    def openid_from_code(self, merchant_id, code):  # type: ignore[no-untyped-def]
        return OPENID


@pytest.fixture
def setup(container, world):  # type: ignore[no-untyped-def]
    mp = FakeMp()
    services = CardServices(container, mp=mp)
    install_card_services(services)
    holder_id = issue_card(services, world.merchant_id, CARD, cash_fen=1_000)
    services.rules.put_template(world.merchant_id, check_template({"template_id": "TPL"}), container.clock.now())
    return services, mp, holder_id


def _start(http, merchant_id: str, amount: int = 3_000) -> str:  # type: ignore[no-untyped-def]
    answer = http.post(f"/cards/v1/alipay/{merchant_id}/recharge", headers={"Content-Type": "application/json"},
                       body=json.dumps({"card_no": CARD, "number": CARD, "amount_fen": amount}))
    assert answer.status_code == 201, answer.body
    body = json.loads(answer.body)
    assert body["qr"] == f"fake://alipay/{body['recharge_id']}"
    return body["recharge_id"]


def _notify(http, fake_channels, merchant_id: str, recharge_id: str, wallet: str):  # type: ignore[no-untyped-def]
    channel = fake_channels.by_wallet[wallet]
    channel.trades.setdefault(recharge_id, fake_channels.by_wallet["alipay"].trades[recharge_id])
    channel.pay(recharge_id)
    headers, body = channel.notification(recharge_id)
    path = f"/cards/notify/{merchant_id}" + ("/alipay" if wallet == "alipay" else "")
    return http.post(path, headers={"Content-Type": "application/json", **headers}, body=body)


def test_a_holder_with_bound_wechat_is_told_of_an_alipay_recharge(http, world, setup, fake_channels) -> None:
    services, mp, holder_id = setup
    services.holders.bind_openid(holder_id, OPENID)
    recharge_id = _start(http, world.merchant_id)
    assert services.recharges.get(recharge_id).openid == OPENID
    for _ in range(2):  # a repeated notification books and tells nothing more
        assert _notify(http, fake_channels, world.merchant_id, recharge_id, "alipay").status_code == 200
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 4_000
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == 4_000
    assert mp.sent == [(OPENID, "TPL")]


def test_a_wechat_notification_cannot_pay_an_alipay_recharge(http, world, setup, fake_channels) -> None:
    services, mp, _ = setup
    recharge_id = _start(http, world.merchant_id)
    before = card_snapshot(world.merchant_id, [CARD])
    assert _notify(http, fake_channels, world.merchant_id, recharge_id, "wechat").status_code == 400
    assert card_snapshot(world.merchant_id, [CARD]) == before
    assert services.recharges.get(recharge_id).status == "CREATED"
    assert mp.sent == []
