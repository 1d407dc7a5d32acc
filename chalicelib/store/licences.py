"""Licences and their fees: a renewal is one TransactWriteItems of the licence (compare-and-set on the
number of terms bought) and the term's fee in the dealer's ledger (attribute_not_exists)."""
from __future__ import annotations

from datetime import date
from typing import Iterator

from pynamodb.exceptions import DoesNotExist

from chalicelib.config import Settings
from chalicelib.domain.licences import Licence, Renewal, licence_entry_id
from chalicelib.store.settlement import conditional_transaction
from chalicelib.store.settlement_models import DealerLedgerModel, LicenceModel


def _licence(item: LicenceModel) -> Licence:
    return Licence(item.merchant_id, item.dealer_id, int(item.terms), date.fromisoformat(item.term_starts_on),
                   date.fromisoformat(item.expires_on), int(item.grace_days))


class LicenceStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def get(self, merchant_id: str) -> Licence | None:
        try:
            return _licence(LicenceModel.get(merchant_id, consistent_read=True))
        except DoesNotExist:
            return None

    def for_dealer(self, dealer_id: str) -> list[Licence]:
        return [_licence(item) for item in LicenceModel.by_dealer.query(dealer_id)]

    def every(self) -> Iterator[Licence]:
        """Every licence (a paged Scan: the daily warning job only, O(merchants))."""
        for item in LicenceModel.scan():
            yield _licence(item)

    def record(self, renewal: Renewal, previous_terms: int, today: date, now: float) -> None:
        """Raises ConditionFailed when another renewal was recorded since `previous_terms` was read."""
        licence = renewal.licence
        item = LicenceModel(licence.merchant_id, dealer_id=licence.dealer_id, terms=licence.terms,
                            term_starts_on=licence.term_starts_on.isoformat(),
                            expires_on=licence.expires_on.isoformat(), grace_days=licence.grace_days, updated_at=now)
        condition = (LicenceModel.merchant_id.does_not_exist() if previous_terms == 0
                     else LicenceModel.terms == previous_terms)
        fee = DealerLedgerModel(
            licence.dealer_id, licence_entry_id(today, licence.merchant_id, licence.terms), kind="LICENCE_FEE",
            amount_fen=-renewal.fee_fen, merchant_id=licence.merchant_id, business_date=today.isoformat(),
            ref=f"{licence.merchant_id}|term {licence.terms}|{licence.term_starts_on}..{licence.expires_on}",
            created_at=now)
        with conditional_transaction(self._settings) as tx:
            tx.save(item, condition=condition)
            tx.save(fee, condition=DealerLedgerModel.entry_id.does_not_exist())
