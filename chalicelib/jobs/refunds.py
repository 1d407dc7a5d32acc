"""Scheduled entry point of the refund sweep, and its command line.

    sweep_refunds   every 10 minutes   asks the platforms about every refund not confirmed yet
                                       (merchant refunds and late payments' automatic refunds), books
                                       the confirmed ones, releases or flags the failed ones

Re-runs (idempotent: a refund is booked once however often the sweep runs):

    python -m chalicelib.jobs.refunds sweep
    python -m chalicelib.jobs.refunds attention     # late refunds that failed and wait for a person

Each run writes one JSON object per log line (stdout on the command line, CloudWatch on Lambda).
"""
from __future__ import annotations

import json
import logging
import sys
from typing import Sequence

from chalice import Blueprint, Rate

from chalicelib import container as container_module
from chalicelib.container import Container
from chalicelib.services.refund_sweep import RefundSweep
from chalicelib.services.settlement import JsonLog, json_log

refund_jobs = Blueprint(__name__)
log = logging.getLogger(__name__)


def refund_sweep(container: Container, log_line: JsonLog | None = None) -> RefundSweep:
    return RefundSweep(container.refund_store, container.orders, container.refunds, container.booker,
                       container.channels, container.clock, log_line or json_log(log))


# WeChat finishes most refunds within minutes: every 10 minutes keeps a merchant's 202 short without
# asking the platforms more than a few times an hour about a slow one.
@refund_jobs.schedule(Rate(10, unit=Rate.MINUTES), name="sweep_refunds")
def sweep_refunds(event: object) -> dict:
    return refund_sweep(container_module.current()).run().summary()


def main(argv: Sequence[str] | None = None, container: Container | None = None, log_to_stdout: bool = True) -> int:
    import argparse  # here, not at the top: the Lambda's cold start has no use for it

    parser = argparse.ArgumentParser(prog="python -m chalicelib.jobs.refunds",
                                     description="Sweep the refunds the platforms have not confirmed yet")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sweep", help="ask about every open refund: book, release, flag or leave pending")
    commands.add_parser("attention", help="list the late refunds that failed and wait for a person")
    args = parser.parse_args(argv)
    if log_to_stdout and not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    sweep = refund_sweep(container or container_module.current())
    if args.command == "sweep":
        summary: object = sweep.run().summary()
    else:
        summary = sweep.attention()
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return 1 if isinstance(summary, dict) and summary.get("errors") else 0


if __name__ == "__main__":
    raise SystemExit(main())
