"""The T+1 settlement job's use case: settle every merchant's business day.

Per merchant: read the records already written for the day, read the day (its running totals, kept by
the money transactions: store/settlement_totals.py; or its ledger entries, see store/settlement.py),
compute what is still to settle (domain/settlement.py), and write it as the next record in one
transaction (record + payout instruction + dealer commission entry, each only if absent).

Re-running a day, or resuming after a crash at any point, gives the same records: a record's id is
(merchant, day, seq), the transaction refuses to write an existing one, and an unchanged day has
nothing left to settle. A day keeps the terms (fee and share rates) it was first settled with, so a
later change of a merchant's rates never re-prices a settled day. Entries booked into a day after it was
settled (a notification retried after midnight) are settled by an adjustment record (seq 01, 02 ...).

Every step logs one JSON line; progress (merchants done of total) is logged and stored in the job's run
record every `progress_every` merchants, so a long day can be watched while it runs.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Callable, Sequence

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import DomainError
from chalicelib.domain.settlement import SettlementRecord, Terms, next_record, record_key
from chalicelib.store.settlement import JobRunStore, MerchantRow, SettlementStore

log = logging.getLogger(__name__)

JsonLog = Callable[[dict], None]
Checkpoint = Callable[[str], None]


def json_log(logger: logging.Logger) -> JsonLog:
    """One JSON object per line (CloudWatch Logs Insights reads the fields)."""
    return lambda fields: logger.info(json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str))


def no_checkpoint(step: str) -> None:
    """Tests pass a checkpoint that stops the job after a chosen step."""


def select_merchants(store: SettlementStore, merchant_ids: Sequence[str] | None,
                     failed: dict[str, str]) -> list[MerchantRow]:
    """Every merchant (a job's run), or the ones named (an operator's re-run), by id; unknown ids go to `failed`."""
    if merchant_ids is None:
        return store.merchants()
    rows = []
    for merchant_id in sorted(set(merchant_ids)):
        row = store.merchant(merchant_id)
        if row is None:
            failed[merchant_id] = "no such merchant"
        else:
            rows.append(row)
    return rows


@dataclass
class SettlementReport:
    day: str
    run_id: str
    merchants: int = 0
    entries: int = 0
    written: list[str] = field(default_factory=list)  # "<merchant>|<record_key>"
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    payout_fen: int = 0
    commission_fen: int = 0


class SettlementService:
    def __init__(self, store: SettlementStore, runs: JobRunStore, clock: Clock, log_line: JsonLog | None = None,
                 checkpoint: Checkpoint = no_checkpoint, progress_every: int = 25, max_attempts: int = 3) -> None:
        self._store = store
        self._runs = runs
        self._clock = clock
        self._log = log_line or json_log(log)
        self._checkpoint = checkpoint
        self._progress_every = max(1, progress_every)
        self._max_attempts = max_attempts

    def run(self, day: date, merchant_ids: Sequence[str] | None = None) -> SettlementReport:
        """Settle `day` for every merchant, or only for `merchant_ids` (an operator's re-run of one)."""
        report = SettlementReport(day.isoformat(), f"settlement#{day.isoformat()}")
        merchants = select_merchants(self._store, merchant_ids, report.failed)
        report.merchants = len(merchants)
        self._runs.start(report.run_id, len(merchants), self._clock.now())
        self._log({"job": "settlement", "event": "start", "day": report.day, "merchants": len(merchants)})
        self._checkpoint("start")
        for done, merchant in enumerate(merchants, 1):
            try:
                self._settle(merchant, day, report)
            except DomainError as error:  # a merchant with nonsense terms must not stop everyone's payout
                report.failed[merchant.merchant_id] = error.message
                self._log({"job": "settlement", "event": "failed", "day": report.day,
                           "merchant_id": merchant.merchant_id, "error": error.message})
            if done % self._progress_every == 0 or done == len(merchants):
                self._progress(report, done)
        self._runs.progress(report.run_id, len(merchants), self._summary(report), self._clock.now(), status="DONE")
        self._log({"job": "settlement", "event": "done", **self._summary(report)})
        self._checkpoint("done")
        return report

    def _settle(self, merchant: MerchantRow, day: date, report: SettlementReport) -> None:
        for _ in range(self._max_attempts):
            stored = self._store.records(merchant.merchant_id, day)
            self._checkpoint(f"records:{merchant.merchant_id}")
            # A settled day keeps the terms it was first settled with.
            terms = stored[0].record.terms if stored else Terms(merchant.scheme, merchant.fee_rate_ppm,
                                                                   merchant.dealer_share_ppm)
            dealer_id = stored[0].record.dealer_id if stored else merchant.dealer_id
            # Read after the records: anything booked in between is in the day read, so in the delta.
            read = self._store.day(merchant.merchant_id, day, terms)
            self._checkpoint(f"read:{merchant.merchant_id}")
            if read.source != self._store.source:
                self._log({"job": "settlement", "event": "read_entries", "day": report.day,
                           "merchant_id": merchant.merchant_id, "why": "totals priced with other terms"})
            record = next_record(merchant.merchant_id, dealer_id, day, terms, read.settlement,
                                 [s.record.settlement for s in stored])
            if record is None:
                report.entries += read.entries
                report.unchanged += 1
                return
            written = self._store.write(record, report.run_id, self._clock.now())
            self._checkpoint(f"write:{merchant.merchant_id}")
            if written:
                report.entries += read.entries
                self._written(record, report)
                return
            # Another run wrote this seq meanwhile: read again and settle what is left, if anything.
        raise DomainError(f"settlement of {merchant.merchant_id} kept racing another run")

    def _written(self, record: SettlementRecord, report: SettlementReport) -> None:
        total = record.settlement.total()
        report.written.append(f"{record.merchant_id}|{record_key(record.business_date, record.seq)}")
        report.payout_fen += record.payout_fen
        report.commission_fen += record.commission_fen
        self._log({"job": "settlement", "event": "settled", "day": report.day, "merchant_id": record.merchant_id,
                   "seq": record.seq, "gross_fen": total.gross_fen, "refunds_fen": total.refunds_fen,
                   "fee_fen": total.fee_fen, "dealer_share_fen": total.dealer_share_fen, "net_fen": total.net_fen,
                   "payout_fen": record.payout_fen, "payout_id": record.payout_id})

    def _progress(self, report: SettlementReport, done: int) -> None:
        self._runs.progress(report.run_id, done, self._summary(report), self._clock.now())
        self._log({"job": "settlement", "event": "progress", "day": report.day, "done": done,
                   "total": report.merchants, "entries": report.entries})
        self._checkpoint(f"progress:{done}")

    @staticmethod
    def _summary(report: SettlementReport) -> dict:
        summary = asdict(report)
        summary["written"] = len(report.written)
        return summary
