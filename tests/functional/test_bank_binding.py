"""Binding a scheme-2 merchant with the bank's code changes which channel accounts it is paid through."""
from __future__ import annotations

import pytest

from chalicelib.domain.bank_code import make_bank_code
from chalicelib.domain.errors import InvalidRequest, NotConfigured
from chalicelib.services.merchants import MerchantSetup
from chalicelib.store.models import MerchantModel
from chalicelib.store.registry import ChannelAccount, Registry
from tests.support.world import seed_world

TOKEN = "202611BBtoken000000000000000001"


@pytest.fixture
def setup(container):  # type: ignore[no-untyped-def]
    registry = Registry(container.sealer, container.clock.now())
    registry.put_provider("bank", [
        ChannelAccount("wechat", "wechat_v2", {"appid": "wxbank", "mch_id": "1900000001"}, {"api_key": "k" * 32}),
        ChannelAccount("alipay", "alipay", {"app_id": "2021000000000001", "alipay_public_key": "pk"},
                       {"app_private_key": "sk"}),
    ])
    return MerchantSetup(registry, container.directory)


def test_bank_code_binds_both_wallets(container, setup) -> None:
    world = seed_world(container, accounts=[], scheme=2)
    assert container.directory.merchant(world.merchant_id).wallets == ()
    setup.bind_bank_code(world.merchant_id, make_bank_code("1900000109", "2088000000000109", TOKEN))
    merchant = container.directory.merchant(world.merchant_id)
    assert merchant.wallets == ("alipay", "wechat")
    wechat = container.directory.channel_config(world.merchant_id, "wechat")
    assert wechat.settings == {"appid": "wxbank", "mch_id": "1900000001", "api_key": "k" * 32, "sub_mch_id": "1900000109"}
    alipay = container.directory.channel_config(world.merchant_id, "alipay")
    assert alipay.settings["app_auth_token"] == TOKEN and alipay.settings["seller_id"] == "2088000000000109"
    stored = MerchantModel.get(world.merchant_id).bank_binding
    assert TOKEN not in str(stored)  # sealed at rest


def test_typo_or_direct_merchant_changes_nothing(container, setup) -> None:
    world = seed_world(container, accounts=[], scheme=2)
    before = MerchantModel.get(world.merchant_id).attribute_values
    with pytest.raises(InvalidRequest):
        code = make_bank_code("1900000109")
        setup.bind_bank_code(world.merchant_id, code[:-8] + ("00000000" if code[-8:] != "00000000" else "11111111"))
    direct = seed_world(container)
    direct_before = MerchantModel.get(direct.merchant_id).attribute_values
    with pytest.raises(NotConfigured):
        setup.bind_bank_code(direct.merchant_id, make_bank_code("1900000109"))
    assert MerchantModel.get(world.merchant_id).attribute_values == before
    assert MerchantModel.get(direct.merchant_id).attribute_values == direct_before
