"""Scheduled entry points of the money side, and the command line to re-run them for a given day.

EventBridge cron expressions are in UTC; business days are Asia/Shanghai dates (UTC+8, no DST):

    settle_previous_day      16:45 UTC = 00:45 Beijing   settles the Beijing day that just ended
    send_previous_day_payouts 17:30 UTC = 01:30 Beijing  sends that day's payout instructions to the bank
    licence_warnings         01:00 UTC = 09:00 Beijing   logs licences expiring, in grace or expired
    reconcile_previous_day   02:00 UTC = 10:00 Beijing   matches yesterday against the platforms' bills

Re-runs (idempotent: the same records, never a second payout):

    python -m chalicelib.jobs.settlement run --day 2026-11-18 [--merchant M1 --merchant M2] [--from-entries]
    python -m chalicelib.jobs.settlement payouts --day 2026-11-18
    python -m chalicelib.jobs.settlement reconcile --day 2026-11-18
    python -m chalicelib.jobs.settlement licences

Each job writes one JSON object per log line (stdout on the command line, CloudWatch on Lambda).
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from datetime import date, timedelta
from typing import Sequence

from chalice import Blueprint, Cron

from chalicelib import container as container_module
from chalicelib.channels.bank_payouts import PayoutInstruction, PayoutResult, send_payout
from chalicelib.channels.base import ChannelState
from chalicelib.channels.bills import Bill, download_bank_file, download_bill
from chalicelib.container import Container
from chalicelib.domain.clock import business_date
from chalicelib.domain.reconciliation import CARRY_WINDOW_S
from chalicelib.services.licences import LicenceService
from chalicelib.services.reconciliation import ReconciliationService
from chalicelib.services.settlement import Checkpoint, JsonLog, SettlementService, json_log, no_checkpoint
from chalicelib.services.settlement_payouts import PayoutService
from chalicelib.store.directory import ChannelConfig
from chalicelib.store.licences import LicenceStore
from chalicelib.store.settlement import JobRunStore, PayoutStore, ReconciliationStore, SettlementStore

settlement_jobs = Blueprint(__name__)
log = logging.getLogger(__name__)


def settlement_service(container: Container, log_line: JsonLog | None = None,
                       checkpoint: Checkpoint = no_checkpoint, progress_every: int = 25,
                       source: str = "totals") -> SettlementService:
    """`source` "totals" (the job) reads each merchant-day's running totals; "entries" reads every ledger
    entry (an operator's re-run of a day booked before the totals existed, or a cross-check)."""
    return SettlementService(SettlementStore(container.settings, source=source), JobRunStore(), container.clock,
                             log_line or json_log(log), checkpoint, progress_every)


def licence_service(container: Container) -> LicenceService:
    return LicenceService(LicenceStore(container.settings), container.directory, container.clock)


def bank_file_url(container: Container) -> str | None:
    """Settings.bank_settlement_file_url (BANK_SETTLEMENT_FILE_URL), else the sandbox's when the channels
    point at it (local stack, tests)."""
    configured = container.settings.bank_settlement_file_url
    gateway = container.settings.channel_gateway
    return configured or (f"{gateway.rstrip('/')}/bank/settlement" if gateway else None)


def bank_payout_url(container: Container) -> str | None:
    """Settings.bank_payout_url (BANK_PAYOUT_URL), else the sandbox's when the channels point at it."""
    gateway = container.settings.channel_gateway
    return container.settings.bank_payout_url or (f"{gateway.rstrip('/')}/bank/payouts" if gateway else None)


def payout_service(container: Container, log_line: JsonLog | None = None, url: str | None = None,
                   checkpoint: Checkpoint = no_checkpoint) -> PayoutService:
    """None-safe: without a payout URL every instruction is reported pending, nothing is marked sent."""
    target = url or bank_payout_url(container)
    timeout_s = max(container.settings.channel_timeout_s, 10.0)

    def send(instruction: PayoutInstruction) -> PayoutResult:
        if not target:
            return PayoutResult(ChannelState.UNKNOWN, message="no bank payout URL configured")
        return send_payout(target, instruction, timeout_s)

    return PayoutService(PayoutStore(), send, container.clock, log_line or json_log(log), checkpoint)


def reconciliation_service(container: Container, log_line: JsonLog | None = None, bank_url: str | None = None,
                           window_s: float = CARRY_WINDOW_S) -> ReconciliationService:
    settings = container.settings
    timeout_s = max(settings.channel_timeout_s, 10.0)  # a bill is larger than an answer

    def bills(config: ChannelConfig, day: date) -> Bill:
        return download_bill(config.kind, config.settings, day, settings.channel_gateway, timeout_s,
                             container.clock.now)

    url = bank_url or bank_file_url(container)
    bank = (lambda day: download_bank_file(url, day, timeout_s)) if url else None
    return ReconciliationService(SettlementStore(settings), ReconciliationStore(), container.orders,
                                 container.channels, bills, bank, JobRunStore(), container.clock,
                                 log_line or json_log(log), window_s)


def previous_business_day(now: float) -> date:
    return business_date(now) - timedelta(days=1)


# --- schedules (UTC) --------------------------------------------------------------------------

@settlement_jobs.schedule(Cron(45, 16, "*", "*", "?", "*"), name="settle_previous_day")
def settle_previous_day(event: object) -> dict:
    current = container_module.current()
    report = settlement_service(current).run(previous_business_day(current.clock.now()))
    return {"day": report.day, "written": len(report.written), "failed": report.failed}


@settlement_jobs.schedule(Cron(30, 17, "*", "*", "?", "*"), name="send_previous_day_payouts")
def send_previous_day_payouts(event: object) -> dict:
    """01:30 Beijing, after settlement (00:45): each of yesterday's payout instructions to the bank, once."""
    current = container_module.current()
    report = payout_service(current).run(previous_business_day(current.clock.now()))
    return {"day": report.day, "sent": len(report.sent), "pending": len(report.pending), "failed": report.failed}


@settlement_jobs.schedule(Cron(0, 1, "*", "*", "?", "*"), name="licence_warnings")
def licence_warnings(event: object) -> dict:
    warnings = licence_service(container_module.current()).warnings()
    emit = json_log(log)
    for warning in warnings:
        emit({"job": "licences", "event": "warning", **warning})
    return {"warnings": len(warnings)}


@settlement_jobs.schedule(Cron(0, 2, "*", "*", "?", "*"), name="reconcile_previous_day")
def reconcile_previous_day(event: object) -> dict:
    current = container_module.current()
    report = reconciliation_service(current).run(previous_business_day(current.clock.now()))
    return {"day": report.day, "differences": len(report.differences), "carried": report.carried}


# --- command line -----------------------------------------------------------------------------

def _day(text: str) -> date:
    import argparse

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a day is YYYY-MM-DD") from None


def main(argv: Sequence[str] | None = None, container: Container | None = None, log_to_stdout: bool = True) -> int:
    import argparse  # here, not at the top: the Lambda's cold start has no use for it

    parser = argparse.ArgumentParser(prog="python -m chalicelib.jobs.settlement",
                                     description="Re-run settlement, reconciliation or the licence check")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="settle one business day (Asia/Shanghai date)")
    run.add_argument("--day", type=_day, required=True)
    run.add_argument("--merchant", action="append", help="only these merchants (repeatable)")
    run.add_argument("--from-entries", action="store_true",
                     help="read every ledger entry instead of the day's running totals")
    reconcile = commands.add_parser("reconcile", help="reconcile one business day against the bills")
    reconcile.add_argument("--day", type=_day, required=True)
    payouts = commands.add_parser("payouts", help="send one business day's payout instructions to the bank")
    payouts.add_argument("--day", type=_day, required=True)
    commands.add_parser("licences", help="list the licences that need attention")
    args = parser.parse_args(argv)
    if log_to_stdout and not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    current = container or container_module.current()
    if args.command == "run":
        source = "entries" if args.from_entries else "totals"
        report = settlement_service(current, source=source).run(args.day, args.merchant)
        summary: object = {"day": report.day, "written": report.written, "unchanged": report.unchanged,
                           "failed": report.failed, "payout_fen": report.payout_fen}
    elif args.command == "reconcile":
        summary = asdict(reconciliation_service(current).run(args.day))
    elif args.command == "payouts":
        summary = asdict(payout_service(current).run(args.day))
    else:
        summary = licence_service(current).warnings()
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return 1 if isinstance(summary, dict) and summary.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
