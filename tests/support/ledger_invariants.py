"""The card ledger's invariants, checked by the card tests after they move money.

1. For every card account, each wallet's balance equals the sum of its ledger entries in that
   wallet (and an account without a live card holds nothing).
2. Over all accounts of a merchant, the balances equal recharges + subsidies - payments
   + reversals - what left by cancellation or expiry, with every kind of entry signed as it must be.
3. Every (terminal, txn) is booked at most once: one account, one entry per wallet, and a
   permanent dedupe record pointing at that account (for a kept offline record the merchant
   booked later, the record of that booking); a reversal never gives back more than its payment.
4. No balance below zero, unless the test allows the offline overdraft policy.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from chalicelib.store.card_models import CardModel
from chalicelib.store.cards import ledger_account
from chalicelib.store.models import DedupeModel, LedgerEntryModel

# kind -> sign the amount must have (+1 in, -1 out, 0 either; a free meal is a 0 payment)
KIND_SIGNS = {
    "RECHARGE": 1, "SUBSIDY_GRANT": 1, "REVERSAL": 1,
    "CARD_PAYMENT": -1, "CARD_PAYMENT_OFFLINE": -1, "SUBSIDY_EXPIRED": -1, "CASH_REFUND": -1,
}
PAYMENT_KINDS = ("CARD_PAYMENT", "CARD_PAYMENT_OFFLINE")
LIVE = ("active", "lost")


@dataclass
class CardTotals:
    balances_fen: int = 0
    by_kind: Counter = field(default_factory=Counter)
    payments_booked: int = 0  # distinct (terminal, txn)


def check_card_ledger(merchant_id: str, allow_negative: bool = False) -> CardTotals:
    items = [CardModel.get(k.card_key, consistent_read=True) for k in CardModel.by_merchant.query(merchant_id)]
    accounts: dict[str, list[CardModel]] = defaultdict(list)
    for item in items:
        accounts[item.account_id].append(item)
    totals = CardTotals()
    payments: dict[str, set[str]] = defaultdict(set)  # "<terminal>#<txn>" -> accounts
    paid: Counter = Counter()  # (source, wallet) -> fen taken
    reversed_: Counter = Counter()
    for account_id, cards in accounts.items():
        live = [c for c in cards if c.status in LIVE]
        assert len(live) <= 1, f"account {account_id} on {len(live)} live cards"
        for dead in (c for c in cards if c.status not in LIVE):
            assert (dead.cash_fen, dead.subsidy_fen) == (0, 0), f"card {dead.card_no} is {dead.status} with money"
        sums: Counter = Counter()
        entries = list(LedgerEntryModel.query(ledger_account(account_id), consistent_read=True))
        for entry in entries:
            amount, kind = int(entry.amount_fen), entry.kind
            assert kind in KIND_SIGNS, f"unknown entry kind {kind}"
            assert amount * KIND_SIGNS[kind] >= 0, f"{kind} {entry.entry_id} has the wrong sign: {amount}"
            assert entry.merchant_id == merchant_id
            sums[entry.wallet] += amount
            totals.by_kind[kind] += amount
            if kind in PAYMENT_KINDS:
                payments[entry.channel_trade_no].add(account_id)
                assert paid[(entry.channel_trade_no, entry.wallet)] == 0 or amount == 0, \
                    f"{entry.channel_trade_no} booked twice from {entry.wallet}"
                paid[(entry.channel_trade_no, entry.wallet)] += -amount
            if kind == "REVERSAL":
                reversed_[(entry.channel_trade_no, entry.wallet)] += amount
        cash = int(live[0].cash_fen) if live else 0
        subsidy = int(live[0].subsidy_fen) if live else 0
        assert (cash, subsidy) == (sums["cash"], sums["subsidy"]), \
            f"account {account_id}: wallets {(cash, subsidy)} != ledger {(sums['cash'], sums['subsidy'])}"
        if not allow_negative:
            assert cash >= 0 and subsidy >= 0, f"account {account_id} below zero: {(cash, subsidy)}"
        totals.balances_fen += cash + subsidy
    k = totals.by_kind  # payments, expiries and refunds are negative amounts already
    assert totals.balances_fen == (k["RECHARGE"] + k["SUBSIDY_GRANT"] + k["CARD_PAYMENT"] + k["CARD_PAYMENT_OFFLINE"]
                                   + k["REVERSAL"] + k["SUBSIDY_EXPIRED"] + k["CASH_REFUND"])
    for source, owners in payments.items():
        assert len(owners) == 1, f"{source} booked on {len(owners)} accounts"
        record = DedupeModel.get(f"txn#{source}", consistent_read=True)
        if record.kind == "card_offline_exception":  # kept offline, then booked by the merchant
            record = DedupeModel.get(f"exception#{merchant_id}#{source}", consistent_read=True)
        assert record.ref in owners, f"{source}: dedupe record points elsewhere"
    for key, amount in reversed_.items():
        assert amount <= paid[key], f"reversal {key} gives back more than was paid"
    totals.payments_booked = len(payments)
    return totals
