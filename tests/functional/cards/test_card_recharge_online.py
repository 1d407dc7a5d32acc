"""Online recharge: 服务号 OAuth binding, JSAPI start, the credit exactly once per notification, and
the 充值成功通知 sent with wechatpy to the sandbox's WeChat API, retried when it fails."""
from __future__ import annotations

import json
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.services.card_container import CardServices, install_card_services
from chalicelib.services.card_wechat_mp import WeChatMp
from chalicelib.store.registry import ChannelAccount
from sandbox import wechat_mp
from sandbox.server import Sandbox
from tests.support.card_world import card_snapshot, issue_card, operator_for
from tests.support.fake_channel import FakeTrade
from tests.support.ledger_invariants import check_card_ledger
from tests.support.world import seed_world

APPID, SECRET, TEMPLATE = "wx00000000cardmp1", "mp-secret-for-tests", "TPL-RECHARGE"
CARD = "70000001"


@pytest.fixture(scope="module")
def sandbox():  # type: ignore[no-untyped-def]
    accounts = {wechat_mp.NAME: wechat_mp.make_accounts_section({APPID: wechat_mp.make_app(SECRET)})}
    box = Sandbox(accounts, platform_modules=("sandbox.wechat_mp",)).start()
    yield box
    box.stop()


class FakeJsapi:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def prepay(self, merchant_id, out_trade_no, amount_fen, openid, description, notify_url) -> dict:  # type: ignore[no-untyped-def]
        self.calls.append((out_trade_no, amount_fen, openid, notify_url))
        return {"appId": APPID, "package": f"prepay_id=wx{out_trade_no}", "signType": "MD5"}


@pytest.fixture
def setup(container, sandbox, http):  # type: ignore[no-untyped-def]
    world = seed_world(container, accounts=[ChannelAccount("wechat", "wechat_v2", {"appid": APPID, "mch_id": "MCH1"},
                                                           {"api_key": "k", "mp_secret": SECRET})])
    jsapi = FakeJsapi()
    tokens = CardServices(container).mp_tokens
    services = CardServices(container, jsapi=jsapi, mp=WeChatMp(container.directory, sandbox.ctx.base_url, tokens))
    install_card_services(services)
    issue_card(services, world.merchant_id, CARD, cash_fen=1_000, name="王五")
    op = operator_for(http, services, world.merchant_id)
    assert op.call("PUT", "/cards/v1/notice-template", {"template_id": TEMPLATE})[0] == 200
    return world, services, jsapi


def _login_code(services: CardServices, merchant_id: str) -> str:
    url = services.mp.authorize_url(merchant_id, "http://127.0.0.1:8000/holder", "s1").split("#")[0]
    request = urllib.request.Request(url + "&sandbox_user=wangwu")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=5)
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 302
        return parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    raise AssertionError("no redirect")


def _bind_and_start(http, services, world, amount: int = 5_000) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    code = _login_code(services, world.merchant_id)
    answer = http.post(f"/cards/v1/wechat/{world.merchant_id}/bind", headers={"Content-Type": "application/json"},
                       body=json.dumps({"code": code, "card_no": CARD, "number": CARD}))
    assert answer.status_code == 200, answer.body
    openid = json.loads(answer.body)["openid"]
    started = http.post(f"/cards/v1/wechat/{world.merchant_id}/recharge", headers={"Content-Type": "application/json"},
                        body=json.dumps({"openid": openid, "amount_fen": amount}))
    assert started.status_code == 201, started.body
    return openid, json.loads(started.body)["recharge_id"]


def _notify(http, fake_channels, world, recharge_id: str, amount: int, paid_amount: int | None = None):  # type: ignore[no-untyped-def]
    channel = fake_channels.by_wallet["wechat"]
    channel.trades.setdefault(recharge_id, FakeTrade(recharge_id, amount))
    channel.pay(recharge_id)
    headers, body = channel.notification(recharge_id, amount_fen=paid_amount)
    return http.post(f"/cards/notify/{world.merchant_id}", headers={"Content-Type": "application/json", **headers},
                     body=body)


def test_the_credit_lands_once_and_the_holder_is_told(http, setup, sandbox, fake_channels) -> None:
    world, services, jsapi = setup
    openid, recharge_id = _bind_and_start(http, services, world)
    assert jsapi.calls == [(recharge_id, 5_000, openid, f"http://127.0.0.1:8000/cards/notify/{world.merchant_id}")]
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == 1_000  # not paid yet
    assert _notify(http, fake_channels, world, recharge_id, 5_000).status_code == 200
    assert _notify(http, fake_channels, world, recharge_id, 5_000).status_code == 200  # the platform repeats
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == 6_000
    assert check_card_ledger(world.merchant_id).by_kind["RECHARGE"] == 6_000
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.notice, recharge.notice_attempts) == ("PAID", None, 1)
    sent = [m for m in sandbox.ctx.platforms["wechat_mp"].messages if m["touser"] == openid
            and m["data"]["remark"]["value"].endswith("60.00元")]
    assert len(sent) == 1 and sent[0]["template_id"] == TEMPLATE
    assert sent[0]["data"]["keyword1"] == {"value": "50.00元"}
    assert sent[0]["data"]["remark"] == {"value": f"卡号{CARD}，当前余额60.00元"}


def test_a_failed_send_keeps_the_credit_and_is_retried(http, setup, sandbox, fake_channels) -> None:
    world, services, _ = setup
    openid, recharge_id = _bind_and_start(http, services, world, 2_000)
    messages = sandbox.ctx.platforms["wechat_mp"].messages
    already = len(messages)
    sandbox.faults.add("/cgi-bin/message/template/send", "error", 1)
    assert _notify(http, fake_channels, world, recharge_id, 2_000).status_code == 200
    recharge = services.recharges.get(recharge_id)
    assert (recharge.status, recharge.notice, recharge.notice_attempts) == ("PAID", "PENDING", 1)
    assert "502" in (recharge.notice_error or "")
    assert card_snapshot(world.merchant_id, [CARD])["cards"][CARD]["cash_fen"] == 3_000
    assert recharge_id in list(services.recharges.notices())
    services.online.retry_notices()
    assert services.recharges.get(recharge_id).notice is None
    assert [(m["touser"], m["data"]["keyword1"]["value"]) for m in messages[already:]] == [(openid, "20.00元")]


def test_a_notification_with_another_amount_changes_nothing(http, setup, fake_channels) -> None:
    world, services, _ = setup
    _, recharge_id = _bind_and_start(http, services, world, 2_000)
    before = card_snapshot(world.merchant_id, [CARD])
    assert _notify(http, fake_channels, world, recharge_id, 2_000, paid_amount=1).status_code == 400
    assert card_snapshot(world.merchant_id, [CARD]) == before
    assert services.recharges.get(recharge_id).status == "CREATED"


def test_binding_needs_the_holders_number_and_a_fresh_code(http, setup) -> None:
    world, services, _ = setup
    code = _login_code(services, world.merchant_id)
    post = lambda body: http.post(f"/cards/v1/wechat/{world.merchant_id}/bind",  # noqa: E731
                                  headers={"Content-Type": "application/json"}, body=json.dumps(body))
    assert post({"code": code, "card_no": CARD, "number": "wrong"}).status_code == 404
    assert post({"code": code, "card_no": CARD, "number": CARD}).status_code == 200
    assert post({"code": code, "card_no": CARD, "number": CARD}).status_code == 400  # a code works once
