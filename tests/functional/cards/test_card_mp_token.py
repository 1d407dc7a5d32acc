"""The 服务号 access token is fetched once per app id for all containers (shared in DynamoDB),
refreshed ahead of its expiry by one container while the others keep using the current one, and
replaced once when WeChat refuses it. The sandbox's WeChat API counts the token fetches."""
from __future__ import annotations

import uuid

import pytest

from chalicelib.services.card_mp_token import LEASE_S, REFRESH_BEFORE_S, MpTokens
from chalicelib.services.card_wechat_mp import NoticeFailed, WeChatMp
from chalicelib.store.card_models import WeChatMpTokenModel
from chalicelib.store.card_mp_tokens import MpTokenStore
from chalicelib.store.registry import ChannelAccount
from sandbox import wechat_mp
from sandbox.server import Sandbox
from tests.support.world import seed_world

SECRET, TEMPLATE = "mp-secret-for-token-tests", "TPL-RECHARGE"


@pytest.fixture
def appid() -> str:
    return f"wx{uuid.uuid4().hex[:16]}"  # the token item is per app id: each test its own


@pytest.fixture
def sandbox(appid):  # type: ignore[no-untyped-def]
    box = Sandbox({wechat_mp.NAME: wechat_mp.make_accounts_section({appid: wechat_mp.make_app(SECRET)})},
                  platform_modules=("sandbox.wechat_mp",)).start()
    yield box
    box.stop()


@pytest.fixture
def merchant(container, appid) -> str:  # type: ignore[no-untyped-def]
    account = ChannelAccount("wechat", "wechat_v2", {"appid": appid, "mch_id": "MCH1"},
                             {"api_key": "k", "mp_secret": SECRET})
    return seed_world(container, accounts=[account]).merchant_id


def _container_mp(container, sandbox, name: str) -> WeChatMp:  # type: ignore[no-untyped-def]
    """What one Lambda container holds: its own memory, the shared table."""
    tokens = MpTokens(MpTokenStore(), container.sealer, container.clock.now, container.sleep, owner=name)
    return WeChatMp(container.directory, sandbox.ctx.base_url, tokens)


def _send(mp: WeChatMp, merchant: str) -> int:
    return mp.send_template(merchant, "o-holder-1", TEMPLATE, {"first": {"value": "充值成功"}})


def _fetches(sandbox, appid: str) -> int:  # type: ignore[no-untyped-def]
    return sandbox.ctx.platforms[wechat_mp.NAME].token_fetches[appid]


def _sent(sandbox) -> int:  # type: ignore[no-untyped-def]
    return len(sandbox.ctx.platforms[wechat_mp.NAME].messages)


def test_containers_share_one_token(container, sandbox, merchant, appid) -> None:
    first, second = _container_mp(container, sandbox, "A"), _container_mp(container, sandbox, "B")
    for _ in range(3):
        _send(first, merchant)
        _send(second, merchant)
    assert (_fetches(sandbox, appid), _sent(sandbox)) == (1, 6)
    item = WeChatMpTokenModel.get(appid, consistent_read=True)
    assert item.version == 1 and item.lease_owner is None
    assert item.expires_at == container.clock.now() + wechat_mp.TOKEN_TTL_S
    assert item.token_sealed and item.token_sealed not in {t for t in sandbox.ctx.platforms[wechat_mp.NAME]._tokens}


def test_one_container_refreshes_ahead_of_expiry_the_others_follow(container, sandbox, merchant, appid) -> None:
    first, second = _container_mp(container, sandbox, "A"), _container_mp(container, sandbox, "B")
    _send(first, merchant)
    _send(second, merchant)
    container.clock.advance(wechat_mp.TOKEN_TTL_S - REFRESH_BEFORE_S + 1)  # due, still valid
    _send(first, merchant)
    _send(second, merchant)
    _send(second, merchant)
    assert (_fetches(sandbox, appid), _sent(sandbox)) == (2, 5)
    assert WeChatMpTokenModel.get(appid, consistent_read=True).version == 2


def test_while_another_refreshes_the_current_token_is_used(container, sandbox, merchant, appid) -> None:
    first = _container_mp(container, sandbox, "A")
    _send(first, merchant)
    container.clock.advance(wechat_mp.TOKEN_TTL_S - REFRESH_BEFORE_S + 1)
    assert MpTokenStore().take_lease(appid, 1, "elsewhere", container.clock.now(), LEASE_S)
    _send(first, merchant)  # due, but someone else is on it: the old token still works
    assert (_fetches(sandbox, appid), _sent(sandbox)) == (1, 2)


def test_with_no_usable_token_and_a_refresh_running_elsewhere_it_waits_then_gives_up(
        container, sandbox, merchant, appid) -> None:
    first = _container_mp(container, sandbox, "A")
    _send(first, merchant)
    container.clock.advance(wechat_mp.TOKEN_TTL_S)  # expired
    assert MpTokenStore().take_lease(appid, 1, "elsewhere", container.clock.now(), LEASE_S)
    with pytest.raises(NoticeFailed, match="refreshed elsewhere"):
        _send(first, merchant)
    assert (_fetches(sandbox, appid), _sent(sandbox)) == (1, 1)  # no second fetch, no message
    container.clock.advance(LEASE_S)  # the other container's lease ran out (it died): this one takes over
    _send(first, merchant)
    assert (_fetches(sandbox, appid), _sent(sandbox)) == (2, 2)


def test_a_refused_token_is_replaced_once_for_everybody(container, sandbox, merchant, appid) -> None:
    first, second = _container_mp(container, sandbox, "A"), _container_mp(container, sandbox, "B")
    _send(first, merchant)
    _send(second, merchant)
    sandbox.ctx.platforms[wechat_mp.NAME].revoke_tokens(appid)
    _send(first, merchant)  # 40001: a new token, then the message
    _send(second, merchant)  # 40001 with the old one: picks up the new token without fetching
    assert (_fetches(sandbox, appid), _sent(sandbox)) == (2, 4)


def test_a_failed_fetch_frees_the_lease_and_fails_the_send(container, sandbox, merchant, appid) -> None:
    first = _container_mp(container, sandbox, "A")
    sandbox.faults.add("/cgi-bin/token", "error", 1)
    with pytest.raises(NoticeFailed):
        _send(first, merchant)
    assert WeChatMpTokenModel.get(appid, consistent_read=True).lease_owner is None
    _send(first, merchant)
    assert (_fetches(sandbox, appid), _sent(sandbox)) == (1, 1)
