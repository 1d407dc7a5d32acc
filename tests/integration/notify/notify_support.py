"""Helpers of the webhook tests: golden payloads, seeding a merchant and its order, posting, snapshots."""
from __future__ import annotations

import importlib.util
import logging
import random
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

from chalicelib.channels import alipay, wechat_v2
from chalicelib.container import Container
from chalicelib.domain.orders import Order, OrderKind, OrderStatus
from chalicelib.services.orders import request_hash, txn_key
from chalicelib.store.models import DedupeModel, LedgerEntryModel, OrderModel
from chalicelib.store.registry import ChannelAccount, Registry
from sandbox import wechat_v3 as wechat_v3_platform
from tests.support.state import dedupe_keys, ledger_of_order
from tests.support.world import World, seed_world

NOTIFY_PREFIX = "scanpay-test-notify-"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
MONEY_MODELS = (OrderModel, LedgerEntryModel, DedupeModel)
PASSWD_TRACES = ("root:", "/bin/", "nologin", "daemon:")  # what /etc/passwd would leak


def fixture_generator(folder: str) -> ModuleType:
    """The folder's make_fixtures.py as a module: its constants are the payloads' ids, amounts and keys."""
    path = FIXTURES / folder / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location(f"notify_{folder}_make_fixtures", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_secrets(settings: dict, secret_names: frozenset[str] | tuple[str, ...]) -> tuple[dict, dict]:
    """(public settings, secrets): the secrets go to ChannelAccount.secrets, which KMS seals."""
    public = {k: v for k, v in settings.items() if k not in secret_names}
    secrets = {k: v for k, v in settings.items() if k in secret_names}
    return public, secrets


V2 = fixture_generator("wechat_v2")
V3 = fixture_generator("wechat_v3")
ALIPAY = fixture_generator("alipay")
V3_SECTION = V3.load_keys()["section"]
V3_SECRET_SETTINGS = ("merchant_private_key", "apiv3_key")  # what signs and what decrypts


def wechat_v2_account(settings: dict) -> ChannelAccount:
    """`settings`: a profile of the fixtures' settings.json (or the bank's part of one); the test key."""
    return ChannelAccount("wechat", "wechat_v2", *split_secrets({**settings, "api_key": V2.KEY},
                                                               wechat_v2.SECRET_SETTINGS))


def wechat_v3_account(verify_mode: str) -> ChannelAccount:
    settings = wechat_v3_platform.channel_settings(V3_SECTION, V3.MCHID, verify_mode=verify_mode)
    return ChannelAccount("wechat", "wechat_v3", *split_secrets(settings, V3_SECRET_SETTINGS))


def alipay_account() -> ChannelAccount:
    """The fixtures' app and seller. Notifications need no call to Alipay, so the app's own key only
    has to load: the fixture folder's test-only key stands in for it (as in the channel's tests)."""
    settings = {
        "app_id": ALIPAY.APP_ID, "seller_id": ALIPAY.SELLER_ID,
        "alipay_public_key": ALIPAY.PLATFORM_KEY.with_name("TEST_ONLY_platform_public_key.pem").read_text(),
        "app_private_key": ALIPAY.PLATFORM_KEY.read_text(),
    }
    return ChannelAccount("alipay", "alipay", *split_secrets(settings, alipay.SECRET_SETTINGS))


# --- world ------------------------------------------------------------------------------------

def seed_merchant(container: Container, accounts: list[ChannelAccount], scheme: int = 1,
                  bank_accounts: list[ChannelAccount] | None = None, bank_binding: dict | None = None) -> World:
    """A merchant whose channel settings are sealed by KMS (scheme 2: the bank's, plus the binding)."""
    if bank_accounts:
        Registry(container.sealer, container.clock.now()).put_provider("bank", bank_accounts)
    return seed_world(container, accounts=accounts, scheme=scheme, bank_binding=bank_binding, terminal_count=1)


def open_order(container: Container, world: World, order_id: str, amount_fen: int, wallet: str,
               txn: int = 1) -> Order:
    """A CREATED QR order with the fixture's out_trade_no as our order id, written the way the order
    service writes it (order and its terminal-txn dedupe record in one transaction)."""
    now = container.clock.now()
    order = Order(order_id, world.merchant_id, world.terminal_id, world.agent_id, txn, amount_fen, OrderKind.QR,
                  OrderStatus.CREATED, now, now + container.settings.qr_order_ttl_s, opened_wallets=(wallet,))
    qr = f"https://qr.example/{order_id}"
    answer = {"order_id": order_id, "qr": qr, "expires_at": order.expires_at, "amount_fen": amount_fen}
    created = container.orders.create_once(order, qr, txn_key(world.terminal_id, txn), answer,
                                           request_hash(OrderKind.QR, amount_fen, wallet))
    assert created
    return order


# --- the webhook ------------------------------------------------------------------------------

def post(http, kind: str, merchant_id: str, body: bytes, headers: dict):  # type: ignore[no-untyped-def]
    return http.post(f"/notify/{kind}/{merchant_id}", headers=headers, body=body)


Answer = tuple[int, bytes, str]


def answer_of(response) -> Answer:  # type: ignore[no-untyped-def]
    """(status, body, content type): what each test asserts exactly."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    return response.status_code, response.body, headers.get("content-type", "")


def assert_refused_without_change(send: Callable[[], object], expected: object) -> dict[str, list[dict]]:
    """`send()` answers `expected` and the money tables are exactly as before; returns them."""
    before = money_tables()
    assert send() == expected
    after = money_tables()
    assert after == before
    return after


def assert_shuffled_answers(deliveries: Sequence[tuple[str, Answer]], send: Callable[[str], Answer],
                            seed: int) -> None:
    """Deliver (payload name, expected answer) pairs in a shuffled (seeded, so repeatable) order."""
    shuffled = list(deliveries)
    random.Random(seed).shuffle(shuffled)
    assert [send(name) for name, _ in shuffled] == [expected for _, expected in shuffled]


# --- state ------------------------------------------------------------------------------------

def money_tables() -> dict[str, list[dict]]:
    """Every order, ledger entry and dedupe record (tests only: a Scan of this session's private tables)."""
    return {model.__name__: sorted((item.attribute_values for item in model.scan(consistent_read=True)), key=repr)
            for model in MONEY_MODELS}


def wipe_money_tables() -> None:
    for model in MONEY_MODELS:
        with model.batch_write() as batch:
            for item in model.scan(consistent_read=True):
                batch.delete(item)


def assert_paid_once(order_id: str, wallet: str, channel: str, trade_no: str, amount_fen: int) -> None:
    """PAID by this trade, exactly one ledger entry, exactly one dedupe record for the platform trade."""
    orders = money_tables()["OrderModel"]
    assert [(o["order_id"], o["status"], o["wallet"], o["channel"], o["channel_trade_no"]) for o in orders] == [
        (order_id, "PAID", wallet, channel, trade_no)]
    entries = ledger_of_order(order_id)
    assert [(e["entry_id"], e["kind"], e["amount_fen"], e["channel_trade_no"]) for e in entries] == [
        ("payment", "QR_PAYMENT", amount_fen, trade_no)]
    assert dedupe_keys("trade#") == [f"trade#{wallet}#{trade_no}"]


def assert_open(order_id: str) -> None:
    """The order is still CREATED, with no ledger entry and no platform-trade dedupe record."""
    assert [(o["order_id"], o["status"]) for o in money_tables()["OrderModel"]] == [(order_id, "CREATED")]
    assert ledger_of_order(order_id) == []
    assert dedupe_keys("trade#") == []


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


def assert_no_passwd(*texts: str) -> None:
    for text in texts:
        for trace in PASSWD_TRACES:
            assert trace not in text
