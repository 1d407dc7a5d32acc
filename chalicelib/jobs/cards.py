"""Scheduled entry points of IC-card accounts (app.py registers the `card_jobs` blueprint)."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

from chalice import Blueprint

from chalicelib import container
from chalicelib.services.card_container import card_services

card_jobs = Blueprint(__name__)
log = logging.getLogger(__name__)


# 16:05 UTC is 00:05 Beijing. Daily, but the service grants only on a month's first days: a missed
# or failed run is caught up the next day, and the per-card month condition makes re-runs harmless.
@card_jobs.schedule("cron(5 16 * * ? *)", name="grant_card_subsidies")
def grant_card_subsidies(event: object) -> list[dict]:
    reports = [asdict(r) for r in card_services(container.current()).subsidy.run()]
    log.info(json.dumps({"job": "grant_card_subsidies", "merchants": reports}))
    return reports


@card_jobs.schedule("rate(5 minutes)", name="send_recharge_notices")
def send_recharge_notices(event: object) -> dict:
    """充值成功通知 that failed to go out right after the recharge are retried here."""
    report = card_services(container.current()).online.retry_notices()
    log.info(json.dumps({"job": "send_recharge_notices", **report}))
    return report


@card_jobs.schedule("rate(10 minutes)", name="refund_uncredited_recharges")
def refund_uncredited_recharges(event: object) -> dict:
    """Online recharges paid for an account closed meanwhile: the platform is asked about their refund
    (the same out_refund_no each time, sent again when it does not know it) until it confirms it
    (REFUNDED, booked) or a person must look (refund FAILED).

    First, recharges still CREATED a few minutes after they started are asked about at the platform:
    a payment whose notification was lost for good is booked as the notification would have."""
    report = card_services(container.current()).online.run_job()
    log.info(json.dumps({"job": "refund_uncredited_recharges", **report}))
    return report
