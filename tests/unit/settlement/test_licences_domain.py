"""Licence terms, fees and the status calendar, day by day around the boundaries."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.licences import LicenceStatus, allows_new_qr_orders, renew, status

START = date(2026, 1, 10)


def test_the_first_term_costs_2500_and_later_terms_2000():
    first = renew(None, "M1", "D1", 1, START)
    second = renew(first.licence, "M1", "D1", 2, date(2026, 12, 20))  # early: continues the first term

    assert (first.fee_fen, first.licence.term_starts_on, first.licence.expires_on) == (250_000, START, date(2027, 1, 10))
    assert (second.fee_fen, second.licence.term_starts_on, second.licence.expires_on) == \
        (200_000, date(2027, 1, 10), date(2028, 1, 10))


@pytest.mark.parametrize("offset, expected, allowed", [
    (-31, LicenceStatus.ACTIVE, True),
    (-30, LicenceStatus.EXPIRING, True),   # the warning starts 30 days before the end
    (-1, LicenceStatus.EXPIRING, True),
    (0, LicenceStatus.GRACE, True),        # expired, still working for the grace period
    (14, LicenceStatus.GRACE, True),
    (15, LicenceStatus.EXPIRED, False),    # 15 days later new QR orders stop
])
def test_status_around_the_end_of_a_term(offset, expected, allowed):
    licence = renew(None, "M1", "D1", 1, START).licence
    today = licence.expires_on + timedelta(days=offset)

    assert status(licence, today) is expected
    assert allows_new_qr_orders(licence, today) is allowed


def test_renewal_in_grace_continues_and_after_a_lapse_starts_anew():
    licence = renew(None, "M1", "D1", 1, START).licence
    in_grace = renew(licence, "M1", "D1", 2, licence.expires_on + timedelta(days=10)).licence
    lapsed_day = licence.expires_on + timedelta(days=40)
    lapsed = renew(licence, "M1", "D1", 2, lapsed_day).licence

    assert in_grace.term_starts_on == licence.expires_on
    assert (lapsed.term_starts_on, lapsed.expires_on) == (lapsed_day, date(2028, 2, 19))
    assert status(lapsed, lapsed_day) is LicenceStatus.ACTIVE


def test_no_licence_recorded_is_allowed_and_listed_as_unlicensed():
    assert status(None, START) is LicenceStatus.UNLICENSED and allows_new_qr_orders(None, START)


@pytest.mark.parametrize("term_no", [0, 2, True, "1"])
def test_only_the_next_term_can_be_bought(term_no):
    with pytest.raises(InvalidRequest):
        renew(None, "M1", "D1", term_no, START)


def test_a_term_starting_on_29_february_ends_on_28_february():
    assert renew(None, "M1", "D1", 1, date(2028, 2, 29)).licence.expires_on == date(2029, 2, 28)

