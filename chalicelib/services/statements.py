"""Statements as CSV: a merchant's daily settlement statements, a dealer's monthly statement.

Amounts are yuan with two decimals (format_yuan of the int fen; no float anywhere). Every statement
is read from records that never change (settlement records, the dealer ledger), so downloading one
twice gives the same file.

Merchant daily statement, one row per channel line, reported line and record total:
    business_date, record (day | adjustment N), section (settled | card | late | other | total),
    channel, wallet, kind, count, gross_yuan, refunds, refunds_yuan, fee_yuan, net_yuan,
    amount_yuan (reported lines: their signed sum), payout_id, payout_yuan
Dealer monthly statement, one row per dealer-ledger entry, then the totals and the licences:
    line (entry | total | licence), date, kind, merchant_id, ref, amount_yuan
"""
from __future__ import annotations

import csv
import io
from calendar import monthrange
from datetime import date, timedelta
from typing import Iterable

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import format_yuan
from chalicelib.services.licences import licence_view
from chalicelib.store.licences import LicenceStore
from chalicelib.store.settlement import SettlementStore, StoredRecord, dealer_entries

MAX_DAYS = 31
MERCHANT_COLUMNS = ("business_date", "record", "section", "channel", "wallet", "kind", "count", "gross_yuan",
                    "refunds", "refunds_yuan", "fee_yuan", "net_yuan", "amount_yuan", "payout_id", "payout_yuan")
DEALER_COLUMNS = ("line", "date", "kind", "merchant_id", "ref", "amount_yuan")


def _csv(columns: tuple[str, ...], rows: Iterable[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _record_rows(stored: StoredRecord) -> list[dict]:
    record = stored.record
    head = {"business_date": record.business_date.isoformat(),
            "record": "day" if record.seq == 0 else f"adjustment {record.seq}"}
    rows = []
    for line in record.settlement.lines + (record.settlement.total(),):
        rows.append(head | {
            "section": "total" if line.channel == "*" else "settled",
            "channel": "" if line.channel == "*" else line.channel, "wallet": "" if line.wallet == "*" else line.wallet,
            "count": line.payments, "gross_yuan": format_yuan(line.gross_fen), "refunds": line.refunds,
            "refunds_yuan": format_yuan(line.refunds_fen), "fee_yuan": format_yuan(line.fee_fen),
            "net_yuan": format_yuan(line.net_fen)})
    rows[-1] |= {"payout_id": stored.payout_id or "", "payout_yuan": format_yuan(record.payout_fen)}
    for reported in record.settlement.reported:
        rows.insert(-1, head | {"section": reported.section, "wallet": reported.wallet, "kind": reported.kind,
                                "count": reported.count, "amount_yuan": format_yuan(reported.amount_fen)})
    return rows


def month_bounds(month: str) -> tuple[date, date]:
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise InvalidRequest("month is YYYY-MM") from None
    return first, first.replace(day=monthrange(first.year, first.month)[1])


def day_range(first_text: str, last_text: str | None) -> tuple[date, date]:
    try:
        first = date.fromisoformat(first_text)
        last = date.fromisoformat(last_text) if last_text else first
    except ValueError:
        raise InvalidRequest("days are YYYY-MM-DD") from None
    if not first <= last < first + timedelta(days=MAX_DAYS):
        raise InvalidRequest(f"from..to is 1 to {MAX_DAYS} days")
    return first, last


class StatementService:
    def __init__(self, settlements: SettlementStore, licences: LicenceStore, clock: Clock) -> None:
        self._settlements = settlements
        self._licences = licences
        self._clock = clock

    def merchant_daily(self, merchant_id: str, first: date, last: date) -> str:
        rows = [row for stored in self._settlements.records_between(merchant_id, first, last)
                for row in _record_rows(stored)]
        return _csv(MERCHANT_COLUMNS, rows)

    def dealer_monthly(self, dealer_id: str, month: str) -> str:
        first, last = month_bounds(month)
        entries = dealer_entries(dealer_id, first, last)
        rows = [{"line": "entry", "date": e.business_date, "kind": e.kind, "merchant_id": e.merchant_id,
                 "ref": e.ref, "amount_yuan": format_yuan(e.amount_fen)} for e in entries]
        earned = sum(e.amount_fen for e in entries if e.kind == "COMMISSION")
        owed = -sum(e.amount_fen for e in entries if e.kind == "LICENCE_FEE")
        for kind, amount in (("commission_earned", earned), ("licence_fees_owed", owed), ("balance", earned - owed)):
            rows.append({"line": "total", "date": month, "kind": kind, "amount_yuan": format_yuan(amount)})
        now = self._clock.now()
        for licence in sorted(self._licences.for_dealer(dealer_id), key=lambda item: item.merchant_id):
            view = licence_view(licence.merchant_id, licence, now)
            rows.append({"line": "licence", "date": view["expires_on"], "kind": view["status"],
                         "merchant_id": licence.merchant_id, "ref": f"term {view['terms']}",
                         "amount_yuan": format_yuan(view["next_term_fee_fen"])})
        return _csv(DEALER_COLUMNS, rows)
