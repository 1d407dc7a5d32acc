"""The scheduled jobs' cron expressions are UTC; the day they work on is the Beijing day just ended."""
from __future__ import annotations

from datetime import date

from chalice import Chalice

from chalicelib.jobs.settlement import previous_business_day, settlement_jobs


def test_the_jobs_run_in_utc_for_beijing_business_days():
    app = Chalice("schedules")
    app.register_blueprint(settlement_jobs)
    schedules = {e.name: e.schedule_expression.to_string() for e in app.event_sources}
    assert schedules == {"settle_previous_day": "cron(45 16 * * ? *)",   # 00:45 Beijing
                         "send_previous_day_payouts": "cron(30 17 * * ? *)",  # 01:30 Beijing
                         "licence_warnings": "cron(0 1 * * ? *)",        # 09:00 Beijing
                         "reconcile_previous_day": "cron(0 2 * * ? *)"}  # 10:00 Beijing
    just_after_midnight_beijing = 1_795_019_400.0  # 2026-11-18 16:30 UTC = 2026-11-19 00:30 Beijing
    assert previous_business_day(just_after_midnight_beijing) == date(2026, 11, 18)
    assert previous_business_day(just_after_midnight_beijing + 9.5 * 3600) == date(2026, 11, 18)  # 10:00 Beijing


def test_the_refund_sweep_runs_every_ten_minutes():
    from chalicelib.jobs.refunds import refund_jobs

    app = Chalice("schedules")
    app.register_blueprint(refund_jobs)
    schedules = {e.name: e.schedule_expression.to_string() for e in app.event_sources}
    assert schedules == {"sweep_refunds": "rate(10 minutes)"}
