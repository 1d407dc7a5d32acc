"""Scheduled entry point: close expired unpaid orders (every minute)."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

from chalice import Blueprint

from chalicelib import container

expiry_jobs = Blueprint(__name__)
log = logging.getLogger(__name__)


@expiry_jobs.schedule("rate(1 minute)", name="expire_orders")
def expire_orders(event: object) -> dict:
    report = container.current().expiry.run()
    log.info(json.dumps({"job": "expire_orders", **asdict(report)}))
    return asdict(report)
