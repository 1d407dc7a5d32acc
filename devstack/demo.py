"""The demo data of DESIGN.md, the same every time, and the sandbox accounts that match it.

Key material is generated once per checkout into .local/ (the sandbox's platform keys and the demo
merchants' keys): nothing secret is committed, and a re-run of `make run` keeps the same keys.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chalicelib.container import Container
from chalicelib.store.registry import ChannelAccount, Registry

DEALER_ID = "demo-dealer"
DEALER_LOGIN, DEALER_PASSWORD = "demo", "demo-password"
MERCHANT_ID = "demo-canteen"
SITE_ID = "demo-site"
AGENT_ID = "demo-edge"
AGENT_SECRET = "demo-edge-secret"  # the edge agent's HMAC key (local stack only)
TERMINALS = {"T0001": "demo-key-T0001", "T0002": "demo-key-T0002"}
CARDS = tuple(f"1000000{n}" for n in range(1, 6))  # 100.00 yuan each
LOST_CARD = "10000009"
CARD_BALANCE_FEN = 10_000
# The canteen counter's bearer token for the operator routes (/cards/v1/..., /refunds/v1/...; local stack only).
OPERATOR_TOKEN = "demo-operator-token-0000000001"

# The bank of scheme 2 is a WeChat Pay service provider and an Alipay ISV app; the bank's code for
# the demo canteen binds it as WeChat sub-merchant 1900000109 and as an Alipay authorised seller.
BANK_WECHAT_MCH_ID = "1900000001"
BANK_WECHAT_APPID = "wxbank00000000001"
DEMO_SUB_MCH_ID = "1900000109"
BANK_ALIPAY_APP_ID = "2021000000000001"
DEMO_ALIPAY_APP_ID = "2021000000000109"
DEMO_ALIPAY_SELLER = "2088000000000109"
DEMO_APP_AUTH_TOKEN = "202611BBdemocanteen0000000000109"


@dataclass(frozen=True)
class DemoKeys:
    sandbox_accounts: dict  # what the sandbox platform serves with


def load_or_make_accounts(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    from sandbox import alipay, wechat_v2, wechat_v3

    accounts = {
        "wechat_v2": wechat_v2.make_accounts_section({
            BANK_WECHAT_MCH_ID: wechat_v2.make_merchant(BANK_WECHAT_APPID, sub_merchants={DEMO_SUB_MCH_ID: []}),
        }),
        "alipay": alipay.make_accounts_section(
            apps={BANK_ALIPAY_APP_ID: "2088000000000001", DEMO_ALIPAY_APP_ID: DEMO_ALIPAY_SELLER},
            auth_tokens={DEMO_APP_AUTH_TOKEN: (BANK_ALIPAY_APP_ID, DEMO_ALIPAY_SELLER)},
        ),
        "wechat_v3": wechat_v3.make_accounts_section(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(accounts, indent=1), encoding="utf-8")
    path.chmod(0o600)
    return accounts


def bank_accounts(accounts: dict) -> list[ChannelAccount]:
    """The bank's own channel accounts, from the sandbox accounts (the same keys on both sides)."""
    from sandbox import alipay

    bank = accounts["wechat_v2"]["merchants"][BANK_WECHAT_MCH_ID]
    alipay_settings = alipay.channel_settings(accounts["alipay"], BANK_ALIPAY_APP_ID)
    return [
        ChannelAccount("wechat", "wechat_v2", {"appid": BANK_WECHAT_APPID, "mch_id": BANK_WECHAT_MCH_ID},
                       {"api_key": bank["api_key"]}),
        ChannelAccount.sealing_secrets("alipay", "alipay", alipay_settings),
    ]


def seed(container: Container, accounts: dict) -> None:
    """Idempotent: every put overwrites the demo item with the same values."""
    registry = Registry(container.sealer, container.clock.now())
    registry.put_dealer(DEALER_ID, "演示经销商 Demo Dealer", DEALER_LOGIN, DEALER_PASSWORD)
    registry.put_provider("bank", bank_accounts(accounts))
    registry.put_merchant(
        MERCHANT_ID, DEALER_ID, "演示食堂 Demo Canteen", scheme=2, fee_rate_ppm=6_000, dealer_share_ppm=1_000,
        bank_binding={"wechat_sub_mch_id": DEMO_SUB_MCH_ID, "alipay_app_auth_token": DEMO_APP_AUTH_TOKEN,
                      "alipay_seller_id": DEMO_ALIPAY_SELLER},
    )
    registry.put_site(SITE_ID, MERCHANT_ID, "一号食堂")
    registry.put_edge_agent(AGENT_ID, SITE_ID, MERCHANT_ID, AGENT_SECRET)
    for terminal_id, key in TERMINALS.items():
        registry.put_terminal(terminal_id, AGENT_ID, MERCHANT_ID, SITE_ID, key, name=f"窗口 {terminal_id}")
    container.directory.clear_cache()
    seed_cards(container)


def seed_cards(container: Container) -> None:
    """The counter's operator token; card holders 1..5 with 100.00 yuan on cards 10000001..10000005;
    holder 9's card 10000009 lost.
    Recharges carry fixed request ids, so they book once however often this runs."""
    from chalicelib.domain.errors import NotFound
    from chalicelib.services.card_container import card_services

    services = card_services(container)
    services.rules.set_operator_token(MERCHANT_ID, OPERATOR_TOKEN, container.clock.now())
    admin = services.admin
    for number, card_no in enumerate(CARDS + (LOST_CARD,), start=1):
        try:
            admin.card(MERCHANT_ID, card_no)
            continue  # seeded already (same emulator)
        except NotFound:
            pass
        holder = admin.create_holder(MERCHANT_ID, f"演示持卡人{number}", number=f"E{number:04d}")
        admin.issue_card(MERCHANT_ID, holder.holder_id, card_no)
        if card_no == LOST_CARD:
            admin.report_lost(MERCHANT_ID, card_no)
        else:
            admin.recharge(MERCHANT_ID, card_no, CARD_BALANCE_FEN, request_id=f"demo-seed-{card_no}")
