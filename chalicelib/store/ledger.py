"""Reading the ledger (writes happen inside the money transactions of store/orders.py)."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.store.models import LedgerEntryModel


@dataclass(frozen=True)
class LedgerEntry:
    account_id: str
    entry_id: str
    amount_fen: int
    kind: str
    order_id: str | None
    wallet: str | None
    channel_trade_no: str | None
    business_date: str


@dataclass(frozen=True)
class LatePayment:
    wallet: str
    trade_no: str
    amount_fen: int


def _entry(item: LedgerEntryModel) -> LedgerEntry:
    return LedgerEntry(item.account_id, item.entry_id, int(item.amount_fen), item.kind, item.order_id,
                       item.wallet, item.channel_trade_no, item.business_date)


class LedgerStore:
    def for_order(self, order_id: str) -> list[LedgerEntry]:
        return [_entry(i) for i in LedgerEntryModel.query(f"order#{order_id}", consistent_read=True)]

    def for_merchant_day(self, merchant_id: str, day: str) -> list[LedgerEntry]:
        return [_entry(i) for i in LedgerEntryModel.by_merchant_day.query(f"{merchant_id}#{day}")]

    def unrefunded_late_payments(self, order_id: str) -> list[LatePayment]:
        entries = self.for_order(order_id)
        refunded = {e.entry_id.split("#", 1)[1] for e in entries if e.entry_id.startswith("lateref#")}
        return [
            LatePayment(e.wallet or "", e.channel_trade_no or "", e.amount_fen)
            for e in entries
            if e.kind == "LATE_PAYMENT" and e.entry_id.split("#", 1)[1] not in refunded
        ]
