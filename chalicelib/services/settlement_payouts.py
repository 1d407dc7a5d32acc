"""The payout job: send each payout instruction settlement wrote on its records to the bank, once.

Settlement writes a scheme-2 merchant's payout (id, amount) on its settlement record in the record's own
transaction; nothing is sent there. This job, run after settlement for the same day, sends every
instruction of the day that the bank has not accepted yet, then marks it sent (payout_sent_at). The
payout_id is deterministic and the bank pays an id once, so every way a run can end is safe to re-run:

- crash after sending, before marking: the re-run sends the same id again; the bank answers its first
  acceptance ("duplicate"), the record is marked, no second payment;
- no answer (timeout): the instruction stays unmarked and is sent again by the next run;
- refused (4xx): logged and reported as failed, left unmarked for an operator (a bad account, say).

A record with a zero payout has nothing to send. Each step logs one JSON line.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from chalicelib.channels.bank_payouts import PayoutInstruction, PayoutResult
from chalicelib.channels.base import ChannelState
from chalicelib.domain.clock import Clock
from chalicelib.services.settlement import Checkpoint, JsonLog, json_log, no_checkpoint
from chalicelib.store.settlement import PayoutRow, PayoutStore

log = logging.getLogger(__name__)

SendPayout = Callable[[PayoutInstruction], PayoutResult]


@dataclass
class PayoutReport:
    day: str
    sent: list[str] = field(default_factory=list)  # payout ids accepted by this run
    already_sent: int = 0
    pending: list[str] = field(default_factory=list)  # no definite answer: the next run sends them again
    failed: dict[str, str] = field(default_factory=dict)  # refused by the bank
    sent_fen: int = 0


class PayoutService:
    def __init__(self, store: PayoutStore, send: SendPayout, clock: Clock, log_line: JsonLog | None = None,
                 checkpoint: Checkpoint = no_checkpoint) -> None:
        self._store = store
        self._send = send
        self._clock = clock
        self._log = log_line or json_log(log)
        self._checkpoint = checkpoint

    def run(self, day: date) -> PayoutReport:
        report = PayoutReport(day.isoformat())
        rows = self._store.of_day(day)
        self._log({"job": "payouts", "event": "start", "day": report.day, "instructions": len(rows)})
        for row in rows:
            if row.sent_at is not None or row.amount_fen == 0 or self._store.sent(row.merchant_id, row.record_key):
                report.already_sent += 1
                continue
            self._send_one(row, report)
        self._log({"job": "payouts", "event": "done", "day": report.day, "sent": len(report.sent),
                   "already_sent": report.already_sent, "pending": len(report.pending), "failed": report.failed})
        return report

    def _send_one(self, row: PayoutRow, report: PayoutReport) -> None:
        result = self._send(PayoutInstruction(row.payout_id, row.merchant_id, row.business_date, row.amount_fen))
        self._checkpoint(f"sent:{row.payout_id}")
        if result.state is ChannelState.SUCCESS:
            if self._store.mark_sent(row, result.bank_ref, self._clock.now()):
                report.sent.append(row.payout_id)
                report.sent_fen += row.amount_fen
            else:
                report.already_sent += 1
            self._log({"job": "payouts", "event": "sent", "day": report.day, "payout_id": row.payout_id,
                       "merchant_id": row.merchant_id, "amount_fen": row.amount_fen, "bank_ref": result.bank_ref,
                       "duplicate": result.duplicate})
        elif result.state is ChannelState.FAIL:
            report.failed[row.payout_id] = f"{result.code} {result.message}".strip()
            self._log({"job": "payouts", "event": "refused", "day": report.day, "payout_id": row.payout_id,
                       "code": result.code, "message": result.message})
        else:
            report.pending.append(row.payout_id)
            self._log({"job": "payouts", "event": "no_answer", "day": report.day, "payout_id": row.payout_id,
                       "message": result.message})
