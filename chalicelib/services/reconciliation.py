"""The reconciliation job's use case: each merchant's day against the platforms' bills, then the scheme-2
merchants' settlements against the bank's settlement file.

Per merchant: our side is the day's ledger (payments, merchant refunds, late payments and their refunds:
everything that touched a platform; card entries never do); their side is the bill of each wallet the
merchant takes, downloaded through that wallet's channel account (a direct merchant's own, or the bank's
for its sub-merchant). Items carried from the day before join the match (domain/reconciliation.py). If a
bill cannot be had (UNKNOWN), the merchant's day is not matched at all and the report says so: a partial
match would report every item of the missing bill as missing. Re-running a day replaces its findings.

A bill payment we never booked is MISSING_OURS when we know no such order, STATUS_DIFFERS when we hold
the order (created or closed on our side, paid on theirs).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Callable, Sequence

from chalicelib.channels.base import ChannelState
from chalicelib.channels.bills import BankFile, Bill, BillRow
from chalicelib.domain.clock import BEIJING, Clock
from chalicelib.domain.errors import DomainError
from chalicelib.domain.reconciliation import (
    CARRY_WINDOW_S,
    Difference,
    DifferenceKind,
    Item,
    Totals,
    compare_totals,
    expected_fee,
    match,
    unbooked_payment,
)
from chalicelib.domain.settlement import LATE_KINDS, PAYMENT_KINDS, REFUND_KINDS, SCHEME_BANK, Settlement, Terms
from chalicelib.services.ports import Channels
from chalicelib.services.settlement import JsonLog, json_log, select_merchants
from chalicelib.store.directory import ChannelConfig
from chalicelib.store.orders import OrderStore
from chalicelib.store.settlement import (
    JobRunStore,
    LedgerLine,
    MerchantRow,
    ReconciliationStore,
    SettlementStore,
    ledger_lines,
)

log = logging.getLogger(__name__)

WALLETS = ("wechat", "alipay")
BillSource = Callable[[ChannelConfig, date], Bill]
BankSource = Callable[[date], BankFile]


@dataclass
class ReconciliationReport:
    day: str
    run_id: str
    merchants: int = 0
    matched: int = 0
    differences: list[dict] = field(default_factory=list)
    carried: int = 0
    unavailable: list[str] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)  # merchant ids asked for that do not exist
    totals_differ: list[str] = field(default_factory=list)  # merchant-days whose settlement totals lost an entry


def our_item(line: LedgerLine, merchant: MerchantRow) -> Item | None:
    """What a platform's bill must show for one of our ledger lines (None: nothing, e.g. card money)."""
    if line.account_id.startswith("card#") or not line.wallet:
        return None
    if line.kind in PAYMENT_KINDS or line.kind == "LATE_PAYMENT":
        kind, ref = "PAY", line.order_id or ""
    elif line.kind in REFUND_KINDS:
        kind, ref = "REFUND", line.entry_id.split("#", 1)[1]
    elif line.kind in LATE_KINDS:  # LATE_REFUND keeps the out_refund_no as its channel_trade_no
        kind, ref = "REFUND", line.channel_trade_no or ""
    else:
        return None
    amount = abs(line.amount_fen)
    # Direct merchants are charged by the platform at their own rate; the bank's cost is not ours to check.
    fee = expected_fee(kind, amount, merchant.fee_rate_ppm) if merchant.scheme != SCHEME_BANK else None
    trade_no = line.channel_trade_no or "" if kind == "PAY" else ""
    return Item(line.wallet, kind, ref, amount, line.created_at, fee, "SUCCESS", trade_no)


def their_item(row: BillRow) -> Item:
    ref = row.out_trade_no if row.kind == "PAY" else row.out_refund_no
    return Item(row.wallet, row.kind, ref, row.amount_fen, row.at, row.fee_fen, row.status, row.trade_no)


def _end_of(day: date) -> float:
    return datetime.combine(day + timedelta(days=1), time(0), BEIJING).timestamp()


def _wallet_totals(settlement: Settlement) -> dict[str, Totals]:
    totals: dict[str, Totals] = {}
    for line in settlement.lines:
        old = totals.get(line.wallet, Totals(0, 0, 0, 0))
        totals[line.wallet] = Totals(old.gross_fen + line.gross_fen, old.refunds_fen + line.refunds_fen,
                                     old.fee_fen + line.fee_fen, old.net_fen + line.net_fen)
    return totals


def _totals_item(wallet: str, sub: str, totals: Totals | None) -> Item | None:
    if totals is None:
        return None
    return Item("bank", "TOTAL", f"{wallet}:{sub}", totals.gross_fen, 0.0, totals.fee_fen,
                trade_no=f"refunds {totals.refunds_fen} net {totals.net_fen}")


class ReconciliationService:
    def __init__(self, settlements: SettlementStore, store: ReconciliationStore, orders: OrderStore,
                 channels: Channels, bills: BillSource, bank_file: BankSource | None, runs: JobRunStore,
                 clock: Clock, log_line: JsonLog | None = None, window_s: float = CARRY_WINDOW_S,
                 progress_every: int = 25) -> None:
        self._settlements = settlements
        self._store = store
        self._orders = orders
        self._channels = channels
        self._bills = bills
        self._bank_file = bank_file
        self._runs = runs
        self._clock = clock
        self._log = log_line or json_log(log)
        self._window_s = window_s
        self._progress_every = max(1, progress_every)

    def run(self, day: date, merchant_ids: Sequence[str] | None = None) -> ReconciliationReport:
        report = ReconciliationReport(day.isoformat(), f"reconciliation#{day.isoformat()}")
        merchants = select_merchants(self._settlements, merchant_ids, report.unknown)
        report.merchants = len(merchants)
        self._runs.start(report.run_id, len(merchants), self._clock.now())
        self._log({"job": "reconciliation", "event": "start", "day": report.day, "merchants": len(merchants)})
        for done, merchant in enumerate(merchants, 1):
            self._merchant(merchant, day, report)
            if done % self._progress_every == 0 or done == len(merchants):
                self._runs.progress(report.run_id, done, self._summary(report), self._clock.now())
                self._log({"job": "reconciliation", "event": "progress", "day": report.day, "done": done,
                           "total": len(merchants)})
        if self._bank_file is not None:
            self._bank(day, [m for m in merchants if m.scheme == SCHEME_BANK], report)
        self._runs.progress(report.run_id, len(merchants), self._summary(report), self._clock.now(), status="DONE")
        self._log({"job": "reconciliation", "event": "done", **self._summary(report)})
        return report

    # --- the wallets' bills -------------------------------------------------------------------

    def _merchant(self, merchant: MerchantRow, day: date, report: ReconciliationReport) -> None:
        lines = list(ledger_lines(merchant.merchant_id, day))
        self._check_totals(merchant, day, lines, report)
        theirs: list[Item] = []
        for wallet in WALLETS:
            found = self._channels.for_merchant(merchant.merchant_id, wallet)
            if found is None:
                continue  # no account for this wallet: anything of ours on it is missing on theirs
            bill = self._bills(found[1], day)
            if bill.state is not ChannelState.SUCCESS:
                report.unavailable.append(f"{merchant.merchant_id}:{wallet}: {bill.message}")
                self._log({"job": "reconciliation", "event": "bill_unavailable", "day": report.day,
                           "merchant_id": merchant.merchant_id, "wallet": wallet, "message": bill.message})
                return  # matched on a later run, all wallets together
            theirs += [their_item(row) for row in bill.rows]
        ours = [item for line in lines if (item := our_item(line, merchant))]
        carried_ours, carried_theirs = self._store.carried(merchant.merchant_id, day - timedelta(days=1))
        result = match(ours, theirs, _end_of(day), day.isoformat(), carried_ours, carried_theirs, self._window_s)
        differences = [self._explain(d, merchant) for d in result.differences]
        self._store.replace_day(f"{merchant.merchant_id}#{day.isoformat()}", merchant.merchant_id, day, differences,
                                list(result.carried_ours), list(result.carried_theirs), report.run_id,
                                self._clock.now())
        report.matched += result.matched
        report.carried += len(result.carried_ours) + len(result.carried_theirs)
        self._record(merchant.merchant_id, differences, report)

    def _check_totals(self, merchant: MerchantRow, day: date, lines: list[LedgerLine],
                      report: ReconciliationReport) -> None:
        """Settlement reads the running totals that the money transactions keep; here, where the day's
        whole ledger is read anyway, they are checked against it, so that a ledger write that forgot its
        totals (a new kind of transaction, say) is reported the morning after, not silently unsettled."""
        stored = self._settlements.records(merchant.merchant_id, day)
        try:
            terms = stored[0].record.terms if stored else Terms(merchant.scheme, merchant.fee_rate_ppm,
                                                                   merchant.dealer_share_ppm)
        except DomainError:
            return  # nonsense terms: settlement reports this merchant as failed
        agree = self._settlements.totals_agree(merchant.merchant_id, day, terms, [line.view() for line in lines])
        if agree is False:
            report.totals_differ.append(merchant.merchant_id)
            self._log({"job": "reconciliation", "event": "totals_differ", "day": report.day,
                       "merchant_id": merchant.merchant_id, "entries": len(lines),
                       "action": "settle the day from its entries: run --from-entries"})

    def _explain(self, difference: Difference, merchant: MerchantRow) -> Difference:
        if difference.kind is not DifferenceKind.MISSING_OURS or difference.theirs is None \
                or difference.theirs.kind != "PAY":
            return difference
        stored = self._orders.get(difference.ref)
        if stored is None or stored.order.merchant_id != merchant.merchant_id:
            return difference
        return unbooked_payment(difference, stored.order.status.value)

    # --- the bank's settlement file -----------------------------------------------------------

    def _bank(self, day: date, merchants: list[MerchantRow], report: ReconciliationReport) -> None:
        assert self._bank_file is not None
        bank = self._bank_file(day)
        if bank.state is not ChannelState.SUCCESS:
            report.unavailable.append(f"bank: {bank.message}")
            self._log({"job": "reconciliation", "event": "bank_file_unavailable", "day": report.day,
                       "message": bank.message})
            return
        theirs = {(line.wallet, line.sub_merchant): Totals(line.gross_fen, line.refunds_fen, line.fee_fen, line.net_fen)
                  for line in bank.lines}
        owner: dict[tuple[str, str], str] = {}
        for merchant in merchants:
            settled = Settlement()
            for stored in self._settlements.records(merchant.merchant_id, day):
                settled = settled.plus(stored.record.settlement)
            ours = _wallet_totals(settled)
            differences = []
            for wallet, sub in merchant.bank_ids:
                owner[(wallet, sub)] = merchant.merchant_id
                found = self._totals_difference(wallet, sub, ours.get(wallet), theirs.get((wallet, sub)))
                if found is not None:
                    differences.append(found)
            self._store.replace_day(f"{merchant.merchant_id}#{day.isoformat()}#bank", merchant.merchant_id, day,
                                    differences, [], [], report.run_id, self._clock.now())
            self._record(merchant.merchant_id, differences, report)
        strangers = [self._totals_difference(wallet, sub, None, totals)
                     for (wallet, sub), totals in sorted(theirs.items()) if (wallet, sub) not in owner]
        found_strangers = [d for d in strangers if d is not None]
        self._store.replace_day(f"bank#{day.isoformat()}", "bank", day, found_strangers, [], [], report.run_id,
                                self._clock.now())
        self._record("bank", found_strangers, report)

    @staticmethod
    def _totals_difference(wallet: str, sub: str, ours: Totals | None, theirs: Totals | None) -> Difference | None:
        kind = compare_totals(ours, theirs)
        if kind is None:
            return None
        return Difference(kind, "bank", f"{wallet}:{sub}", _totals_item(wallet, sub, ours),
                          _totals_item(wallet, sub, theirs))

    # --- reporting ----------------------------------------------------------------------------

    def _record(self, merchant_id: str, differences: list[Difference], report: ReconciliationReport) -> None:
        for difference in differences:
            entry = {"merchant_id": merchant_id, "kind": difference.kind.value, "source": difference.source,
                     "ref": difference.ref, "note": difference.note}
            report.differences.append(entry)
            self._log({"job": "reconciliation", "event": "difference", "day": report.day, **entry})

    @staticmethod
    def _summary(report: ReconciliationReport) -> dict:
        return {"day": report.day, "merchants": report.merchants, "matched": report.matched,
                "differences": len(report.differences), "carried": report.carried,
                "unavailable": len(report.unavailable)}
