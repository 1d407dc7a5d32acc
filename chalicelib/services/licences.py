"""Licence use cases: the operator records a term bought, the order path asks whether new QR orders are
allowed, the dealer console and the daily job list the licences that need attention.

`licence_allows_new_qr_orders` is on every QR order's path, so it reads the licence once per `ttl_s`
per container (a GetItem the first time, then nothing): a renewal takes effect within a minute.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from chalicelib.domain.clock import Clock, business_date
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.licences import (
    SUGGESTED_RETAIL_FIRST_YEAR_FEN,
    WARNED,
    Licence,
    allows_new_qr_orders,
    renew,
    status,
    term_fee,
)
from chalicelib.store.directory import Directory
from chalicelib.store.licences import LicenceStore
from chalicelib.store.orders import ConditionFailed


def licence_view(merchant_id: str, licence: Licence | None, now: float) -> dict:
    today = business_date(now)
    view = {"merchant_id": merchant_id, "status": status(licence, today).value, "terms": 0, "expires_on": None,
            "grace_ends_on": None, "days_left": None, "next_term_fee_fen": term_fee(1),
            "suggested_retail_first_year_fen": SUGGESTED_RETAIL_FIRST_YEAR_FEN}
    if licence is not None:
        view |= {"dealer_id": licence.dealer_id, "terms": licence.terms,
                 "term_starts_on": licence.term_starts_on.isoformat(), "expires_on": licence.expires_on.isoformat(),
                 "grace_ends_on": licence.grace_ends_on.isoformat(),
                 "days_left": (licence.expires_on - today).days, "next_term_fee_fen": term_fee(licence.terms + 1)}
    return view


class LicenceService:
    def __init__(self, store: LicenceStore, directory: Directory, clock: Clock, ttl_s: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Licence | None]] = {}

    def licence_allows_new_qr_orders(self, merchant_id: str, now: float) -> bool:
        """False once the licence's grace period has ended (the order path answers ERR011)."""
        return allows_new_qr_orders(self._cached(merchant_id), business_date(now))

    def _cached(self, merchant_id: str) -> Licence | None:
        hit = self._cache.get(merchant_id)
        if hit is not None and hit[0] > self._monotonic():
            return hit[1]
        licence = self._store.get(merchant_id)
        self._cache[merchant_id] = (self._monotonic() + self._ttl_s, licence)
        return licence

    def renew(self, merchant_id: str, term_no: int, grace_days: int | None = None) -> dict:
        """The operator records that the dealer bought term `term_no` (1 = the deployment's first year).
        Repeating a renewal already recorded answers the licence as it is, charging nothing again."""
        merchant = self._directory.merchant(merchant_id)
        if merchant is None:
            raise NotFound("no such merchant")
        now = self._clock.now()
        current = self._store.get(merchant_id)
        if current is not None and not isinstance(term_no, bool) and isinstance(term_no, int) \
                and 1 <= term_no <= current.terms:
            return licence_view(merchant_id, current, now) | {"recorded": False}
        extra = {} if grace_days is None else {"grace_days": grace_days}
        renewal = renew(current, merchant_id, merchant.dealer_id, term_no, business_date(now), **extra)
        try:
            self._store.record(renewal, current.terms if current else 0, business_date(now), now)
        except ConditionFailed as error:
            raise Conflict("the licence changed meanwhile; read it and try again") from error
        self._cache.pop(merchant_id, None)
        return licence_view(merchant_id, renewal.licence, now) | {"recorded": True, "fee_fen": renewal.fee_fen}

    def view(self, merchant_id: str) -> dict:
        return licence_view(merchant_id, self._store.get(merchant_id), self._clock.now())

    def for_dealer(self, dealer_id: str) -> list[dict]:
        now = self._clock.now()
        return [licence_view(licence.merchant_id, licence, now) for licence in self._store.for_dealer(dealer_id)]

    def warnings(self, licences: Iterable[Licence] | None = None) -> list[dict]:
        """Licences expiring within 30 days, in their grace period, or expired (the daily job logs them)."""
        now = self._clock.now()
        chosen = self._store.every() if licences is None else licences
        return [licence_view(licence.merchant_id, licence, now) for licence in chosen
                if status(licence, business_date(now)) in WARNED]
