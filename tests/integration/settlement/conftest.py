"""The module's stack: the sandbox, its own tables and a production Container (see recon_support.py)."""
from __future__ import annotations

import dataclasses
from typing import Iterator

import pytest

from chalicelib.config import Settings
from chalicelib.container import Container
from chalicelib.domain.clock import FixedClock
from chalicelib.store.connection import bind_models, create_tables
from chalicelib.store.registry import Registry
from sandbox.server import Sandbox
from tests.integration.settlement.recon_support import (
    BANK_APP,
    BANK_APPID,
    BANK_MCH,
    DAY_START,
    DIRECT_APP,
    DIRECT_APPID,
    DIRECT_MCH,
    RECON_PREFIX,
    SUB_MCH,
    SUB_SELLER,
    TOKEN,
    Stack,
    channel_accounts,
    sandbox_accounts,
)
from tests.support.world import seed_world


@pytest.fixture(scope="module")
def stack(settings: Settings) -> Iterator[Stack]:
    accounts = sandbox_accounts()
    clock = FixedClock(DAY_START)
    box = Sandbox(accounts, schedule_scale=0.01,
                  platform_modules=("sandbox.wechat_v2", "sandbox.alipay", "sandbox.bank")).start("127.0.0.1", 0)
    box.ctx.clock = clock.now  # the platform's "now" is the test's: a past day, whatever the real date
    own = dataclasses.replace(settings, table_prefix=RECON_PREFIX, channel_gateway=box.ctx.base_url)
    bind_models(own)
    create_tables()
    container = Container(own, clock, sleep=clock.advance)
    Registry(container.sealer, clock.now()).put_provider("bank", channel_accounts(accounts, BANK_MCH, BANK_APPID,
                                                                                   BANK_APP))
    direct = seed_world(container, channel_accounts(accounts, DIRECT_MCH, DIRECT_APPID, DIRECT_APP), scheme=1)
    bank = seed_world(container, [], scheme=2, bank_binding={
        "wechat_sub_mch_id": SUB_MCH, "alipay_app_auth_token": TOKEN, "alipay_seller_id": SUB_SELLER})
    try:
        yield Stack(box, container, direct, bank, clock)
    finally:
        box.stop()
        bind_models(settings)
