"""Licences of merchant deployments. Pure: no I/O.

Each merchant deployment has a licence bought by its dealer one year at a time: the first term costs the
dealer 2,500.00 CNY (cloud space, software and service), each later term 2,000.00 CNY; the suggested
retail price of the first year is 4,800.00 CNY. The platform operator records each term bought.

    ACTIVE    more than WARNING_DAYS before the end of the term
    EXPIRING  the last WARNING_DAYS (30) days of the term: the dealer is warned
    GRACE     up to grace_days (15 by default) after the end: still working, warned every day
    EXPIRED   after the grace period: new QR orders get ERR011; card payments, refunds and
              settlement go on (nothing that moves money already taken is ever stopped)
    UNLICENSED no licence recorded yet: allowed (deployments that predate licensing), listed for the operator

Terms are contiguous: a renewal before the grace period ends starts where the last term ended (a dealer
gains nothing by renewing late). A renewal after a lapse starts on the day it is recorded (the gap is not
charged). Dates are Asia/Shanghai dates; `expires_on` is the first day no longer covered.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum

from chalicelib.domain.errors import InvalidRequest

FIRST_TERM_FEN = 250_000
LATER_TERM_FEN = 200_000
SUGGESTED_RETAIL_FIRST_YEAR_FEN = 480_000
WARNING_DAYS = 30
DEFAULT_GRACE_DAYS = 15


class LicenceStatus(str, Enum):
    UNLICENSED = "UNLICENSED"
    ACTIVE = "ACTIVE"
    EXPIRING = "EXPIRING"
    GRACE = "GRACE"
    EXPIRED = "EXPIRED"


WARNED = frozenset({LicenceStatus.EXPIRING, LicenceStatus.GRACE, LicenceStatus.EXPIRED})


@dataclass(frozen=True)
class Licence:
    merchant_id: str
    dealer_id: str
    terms: int  # yearly terms bought so far
    term_starts_on: date
    expires_on: date
    grace_days: int = DEFAULT_GRACE_DAYS

    @property
    def grace_ends_on(self) -> date:
        """The first day new QR orders are refused."""
        return self.expires_on + timedelta(days=self.grace_days)


@dataclass(frozen=True)
class Renewal:
    licence: Licence
    fee_fen: int  # what the dealer owes for this term


def term_fee(term_no: int) -> int:
    return FIRST_TERM_FEN if term_no == 1 else LATER_TERM_FEN


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def status(licence: Licence | None, today: date) -> LicenceStatus:
    if licence is None:
        return LicenceStatus.UNLICENSED
    if today >= licence.grace_ends_on:
        return LicenceStatus.EXPIRED
    if today >= licence.expires_on:
        return LicenceStatus.GRACE
    if today >= licence.expires_on - timedelta(days=WARNING_DAYS):
        return LicenceStatus.EXPIRING
    return LicenceStatus.ACTIVE


def allows_new_qr_orders(licence: Licence | None, today: date) -> bool:
    return status(licence, today) is not LicenceStatus.EXPIRED


def renew(current: Licence | None, merchant_id: str, dealer_id: str, term_no: int, today: date,
          grace_days: int = DEFAULT_GRACE_DAYS) -> Renewal:
    """The licence after buying term `term_no` (1 for a new deployment). The caller names the term, so a
    retried renewal cannot buy a second one."""
    expected = (current.terms if current else 0) + 1
    if isinstance(term_no, bool) or not isinstance(term_no, int) or term_no != expected:
        raise InvalidRequest(f"the next term of this licence is {expected}")
    if not 0 <= grace_days <= 365:
        raise InvalidRequest("grace_days is between 0 and 365")
    if current is None or today >= current.grace_ends_on:
        starts_on = today
    else:
        starts_on = current.expires_on
    licence = Licence(merchant_id, dealer_id, term_no, starts_on, add_years(starts_on, 1),
                      current.grace_days if current else grace_days)
    return Renewal(licence, term_fee(term_no))


def licence_entry_id(day: date, merchant_id: str, term_no: int) -> str:
    """The dealer-ledger entry of a term's fee; sorts by day with the commission entries."""
    return f"{day.isoformat()}#licence#{merchant_id}#{term_no:02d}"
