"""Accounts and merchants of the reconciliation tests: the sandbox's and ours, with the same keys.

Reconciliation against the in-process sandbox (WeChat Pay v2, Alipay, the bank's file), over real HTTP.

The module runs on its own tables (prefix RECON_PREFIX), so the jobs' merchant list holds only the
merchants seeded here, and the production Container (channels built from the directory, pointed at the
sandbox). Time is a FixedClock on a past day (DAY), shared by the services and the sandbox: the sandbox
checks Alipay's request timestamps and publishes a day's bills by that clock, so a test pays on DAY and
moves the clock to the next morning to reconcile, whatever the real date.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from chalicelib.container import Container
from chalicelib.domain.clock import BEIJING, FixedClock
from chalicelib.store.registry import ChannelAccount
from sandbox import alipay, wechat_v2
from sandbox.server import Sandbox
from tests.support.world import World

RECON_PREFIX = "scanpay-recon-"
DIRECT_MCH, DIRECT_APPID = "1900000301", "wx0000000000recon01"
BANK_MCH, BANK_APPID, SUB_MCH = "1900000302", "wx0000000000recon02", "1900000309"
DIRECT_APP, DIRECT_SELLER = "2021000000000301", "2088000000000301"
BANK_APP, BANK_SELLER, SUB_SELLER = "2021000000000302", "2088000000000302", "2088000000000309"
TOKEN = "202611BBreconsub0000000000000309"


# The module's business day: a fixed past Beijing day. The container and the sandbox share one FixedClock,
# so trades, our records, the Alipay SDK's request timestamps and the sandbox's checks of them all agree.
DAY = date(2026, 3, 10)
DAY_START = datetime.combine(DAY, time(9, 0), BEIJING).timestamp()


@dataclass
class Stack:
    sandbox: Sandbox
    container: Container
    direct: World
    bank: World
    clock: FixedClock


def sandbox_accounts() -> dict:
    return {
        "wechat_v2": wechat_v2.make_accounts_section({
            DIRECT_MCH: wechat_v2.make_merchant(DIRECT_APPID),
            BANK_MCH: wechat_v2.make_merchant(BANK_APPID, sub_merchants={SUB_MCH: []}),
        }),
        "alipay": alipay.make_accounts_section(apps={DIRECT_APP: DIRECT_SELLER, BANK_APP: BANK_SELLER},
                                               auth_tokens={TOKEN: (BANK_APP, SUB_SELLER)}),
        "bank": {"provider_id": "bank", "wechat_mch_id": BANK_MCH, "alipay_app_id": BANK_APP, "fee_rate_ppm": 6000},
    }


def channel_accounts(accounts: dict, mch_id: str, appid: str, app_id: str) -> list[ChannelAccount]:
    wechat = accounts["wechat_v2"]["merchants"][mch_id]
    ali = alipay.channel_settings(accounts["alipay"], app_id)
    return [ChannelAccount("wechat", "wechat_v2", {"appid": appid, "mch_id": mch_id}, {"api_key": wechat["api_key"]}),
            ChannelAccount("alipay", "alipay", {k: v for k, v in ali.items() if k != "app_private_key"},
                           {"app_private_key": ali["app_private_key"]})]
