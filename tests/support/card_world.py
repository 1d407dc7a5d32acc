"""Seeds card holders, cards and balances through the card services (so every fen has its ledger
entry), and snapshots card state for 'nothing changed' assertions."""
from __future__ import annotations

import json
import uuid

import pytest

from chalicelib.container import Container
from chalicelib.domain.cards import Wallet
from chalicelib.services.card_container import CardServices, card_services, install_card_services
from chalicelib.store.card_models import CardModel
from chalicelib.store.cards import Booked, EntrySpec, Movement, card_key, ledger_account
from chalicelib.store.models import DedupeModel, LedgerEntryModel


@pytest.fixture
def cs(container: Container) -> CardServices:
    return card_services(container)


def installed_services_with_card(container: Container, merchant_id: str, card_no: str,
                                 cash_fen: int = 1_000) -> CardServices:
    """Fresh card services, installed for the routes to use, with one card issued holding ``cash_fen``."""
    built = CardServices(container)
    install_card_services(built)
    issue_card(built, merchant_id, card_no, cash_fen=cash_fen)
    return built


def issue_card(services: CardServices, merchant_id: str, card_no: str, cash_fen: int = 0,
               class_code: str = "default", name: str = "张三") -> str:
    """A holder with a card and `cash_fen` recharged at the counter. Returns the holder id."""
    holder = services.admin.create_holder(merchant_id, name, number=card_no, class_code=class_code)
    services.admin.issue_card(merchant_id, holder.holder_id, card_no)
    if cash_fen:
        services.admin.recharge(merchant_id, card_no, cash_fen, f"seed-{uuid.uuid4().hex[:12]}")
    return holder.holder_id


def grant_subsidy(services: CardServices, merchant_id: str, card_no: str, amount_fen: int) -> None:
    """A subsidy credit as the monthly job books it (one entry, deterministic id)."""
    card = services.cards.get(merchant_id, card_no)
    assert card is not None
    tag = uuid.uuid4().hex[:8]
    entry = EntrySpec(f"subsidy#test-{tag}", Wallet.SUBSIDY, amount_fen, "SUBSIDY_GRANT", f"test-{tag}")
    outcome = services.cards.credit(card, {Wallet.SUBSIDY: amount_fen},
                                    Movement(merchant_id, card.account_id, services.container.clock.now(), (entry,)))
    assert isinstance(outcome, Booked), outcome


def card_snapshot(merchant_id: str, card_nos: list[str], terminal_id: str | None = None) -> dict:
    """The card items, their accounts' ledgers and the terminal's txn dedupe records, read raw."""
    cards = {}
    ledgers = {}
    for card_no in card_nos:
        try:
            item = CardModel.get(card_key(merchant_id, card_no), consistent_read=True)
        except CardModel.DoesNotExist:
            continue
        cards[card_no] = item.attribute_values
        ledgers[item.account_id] = sorted(
            (e.attribute_values for e in LedgerEntryModel.query(ledger_account(item.account_id), consistent_read=True)),
            key=lambda v: v["entry_id"])
    dedupe = []
    if terminal_id is not None:  # tests only: a Scan is fine here
        dedupe = sorted(d.dedupe_key for d in DedupeModel.scan(DedupeModel.dedupe_key.startswith(f"txn#{terminal_id}#")))
    return {"cards": cards, "ledgers": ledgers, "txn_dedupe": dedupe}


class OperatorClient:
    """Calls the operator API through the Chalice test client with the interim token."""

    def __init__(self, http, merchant_id: str, token: str) -> None:  # type: ignore[no-untyped-def]
        self.http, self.merchant_id, self.token = http, merchant_id, token

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "X-ScanPay-Merchant": self.merchant_id,
                "Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        raw = json.dumps(body or {}).encode()
        answer = getattr(self.http, method.lower())(path, headers=self._headers(), body=raw)
        return answer.status_code, json.loads(answer.body or b"{}")


def operator_for(http, services: CardServices, merchant_id: str) -> OperatorClient:  # type: ignore[no-untyped-def]
    token = f"op-{uuid.uuid4().hex}"
    services.rules.set_operator_token(merchant_id, token, services.container.clock.now())
    return OperatorClient(http, merchant_id, token)


def upload_offline(edge, terminal_id: str, card_no: str, txn: int, amount_fen: int, ts: int) -> dict:  # type: ignore[no-untyped-def]
    """One offline record through the signed edge client (offline_id `o<txn>`); the JSON answer."""
    record = {"txn": txn, "card": card_no, "amount_fen": amount_fen, "ts": ts, "offline_id": f"o{txn}"}
    return json.loads(edge.post("/edge/v1/cards/offline", {"terminal_id": terminal_id, "records": [record]}).body)


def card_state(merchant_id: str, card_no: str) -> dict:
    return card_snapshot(merchant_id, [card_no])["cards"][card_no]


def limit_counters(merchant_id: str, card_no: str) -> tuple:
    """(day, day_fen, day_count, meal, meal_fen, meal_count) as the card item holds them."""
    card = card_state(merchant_id, card_no)
    return card["day"], card["day_fen"], card["day_count"], card["meal"], card["meal_fen"], card["meal_count"]


def start_alipay_recharge(http, merchant_id: str, card_no: str, amount_fen: int) -> str:  # type: ignore[no-untyped-def]
    """A holder starts an online Alipay recharge of card_no (the number doubles as the proof of the card)."""
    answer = http.post(f"/cards/v1/alipay/{merchant_id}/recharge", headers={"Content-Type": "application/json"},
                       body=json.dumps({"card_no": card_no, "number": card_no, "amount_fen": amount_fen}))
    assert answer.status_code == 201, answer.body
    return json.loads(answer.body)["recharge_id"]


def post_alipay_notification(http, fake_channels, merchant_id: str, recharge_id: str):  # type: ignore[no-untyped-def]
    """The FakeChannel's signed notification of the recharge's trade, posted to our webhook."""
    headers, body = fake_channels.by_wallet["alipay"].notification(recharge_id)
    return http.post(f"/cards/notify/{merchant_id}/alipay",
                     headers={"Content-Type": "application/json", **headers}, body=body)
