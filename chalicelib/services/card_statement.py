"""A card holder's statement for the counter: the account's ledger over a date range with opening
and closing balance, as JSON pages or one CSV. The account follows its holder across replaced
cards, so asking by an old card number gives the same statement as by the new one.

Cost: one Query over the account's ledger partition (every entry, projected), because entry ids
are not time-ordered and the opening balance needs everything before the range. A card account
books a few entries a day, so a year is a few thousand small items; see docs/access-patterns.md.
"""
from __future__ import annotations

import csv
import io
from datetime import date

from chalicelib.domain.card_statement import CSV_COLUMNS, StatementEntry, StatementPage, statement
from chalicelib.services.card_admin import CardAdminService
from chalicelib.store.cards import CardStore


class CardStatementService:
    def __init__(self, cards: CardStore, admin: CardAdminService) -> None:
        self._cards = cards
        self._admin = admin

    def account_of_card(self, merchant_id: str, card_no: str) -> tuple[str, dict]:
        """The card's account and who it is; NotFound for a card not of this merchant."""
        card = self._admin.card(merchant_id, card_no)
        return card.account_id, {"card_no": card.card_no, "holder_id": card.holder_id, "status": card.status.value}

    def account_of_holder(self, merchant_id: str, holder_id: str) -> tuple[str, dict]:
        holder = self._admin.holder(merchant_id, holder_id)
        return holder.account_id, {"card_no": holder.card_no, "holder_id": holder.holder_id, "name": holder.name}

    def page(self, merchant_id: str, account_id: str, first: date, last: date, limit: int | None,
             cursor: str | None) -> StatementPage:
        entries = [StatementEntry(e.entry_id, float(e.created_at), e.business_date, e.kind, e.wallet or "cash",
                                  int(e.amount_fen), e.channel_trade_no or "")
                   for e in self._cards.account_entries(account_id) if e.merchant_id == merchant_id]
        return statement(entries, first, last, limit, cursor)


def page_to_dict(page: StatementPage, who: dict) -> dict:
    return who | {"from": page.first.isoformat(), "to": page.last.isoformat(), "opening": page.opening.to_dict(),
                  "closing": page.closing.to_dict(), "count": page.count,
                  "entries": [line.to_dict() for line in page.lines], "next_cursor": page.next_cursor}


def page_to_csv(page: StatementPage) -> str:
    """Opening and closing balance as the first and last rows, the entries between."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow([page.first.isoformat(), "", "OPENING", "", "", page.opening.balance_fen, "", ""])
    for line in page.lines:
        row = line.to_dict()
        writer.writerow([row["date"], f"{row['at']:.3f}", row["kind"], row["wallet"], row["amount_fen"],
                         row["balance_fen"], row["source"], row["entry_id"]])
    writer.writerow([page.last.isoformat(), "", "CLOSING", "", "", page.closing.balance_fen, "", ""])
    return out.getvalue()
