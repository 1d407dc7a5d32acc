"""Per-merchant-day running totals, written inside every money transaction that books a ledger entry.

One item per `<merchant>#<day>#<channel>#<shard 0..3>`, stored as hash key merchant_day
"<merchant>#<day>" and range key channel_shard "<channel>#<shard>", so that settlement reads a whole
merchant-day with one Query (4 items per channel), and a busy merchant's payments spread over 4 items
(shard = a hash of the order id) instead of one hot item. The day is the Asia/Shanghai business day of
the entry (its business_date attribute), exactly as the ledger entry's merchant_day, so totals and entries cover the same day.

The transaction that writes the ledger entry also ADDs the entry's counters (domain/settlement_totals.py)
to its item: both are written or neither, a refused retry adds nothing, so the totals always equal the
sum of the entries booked since this item was introduced. Card transactions add theirs under channel
"card" (reported, never settled); fees are priced with the merchant's terms of the moment (TermsLookup).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.transactions import TransactWrite

from chalicelib.domain.clock import business_date
from chalicelib.domain.errors import DomainError
from chalicelib.domain.settlement import CARD_ACCOUNT_PREFIX, EntryView, Terms
from chalicelib.domain.settlement_totals import counters, item_channel, shard_of
from chalicelib.store.models import TableModel

TermsLookup = Callable[[str], "Terms | None"]
log = logging.getLogger(__name__)


class SettlementTotalsModel(TableModel):
    """Counters only (ADD): attribute names are the counters' names, see domain/settlement_totals.py."""

    class Meta(TableModel.Meta):
        table_name = "settlement_totals"

    merchant_day = UnicodeAttribute(hash_key=True)  # "<merchant>#<yyyy-mm-dd>" (Asia/Shanghai)
    channel_shard = UnicodeAttribute(range_key=True)  # "<channel>#<0..3>"


@dataclass(frozen=True)
class TotalsUpdate:
    """One totals item's update: `item` names it, `actions` ADD the counters."""

    item: SettlementTotalsModel
    actions: list


def merchant_day_key(merchant_id: str, day: str) -> str:
    return f"{merchant_id}#{day}"


def totals_updates(merchant_id: str, day: str, shard_key: str, entries: Sequence[EntryView],
                   terms: Terms | None) -> list[TotalsUpdate]:
    """The updates that add `entries` (of the business day `day`, as on their ledger entries; all of one
    transaction, or one seeded batch) to their totals items: one per channel, since a transaction may
    touch an item only once."""
    by_channel: dict[str, list[EntryView]] = {}
    for entry in entries:
        by_channel.setdefault(item_channel(entry), []).append(entry)
    updates = []
    for channel, group in sorted(by_channel.items()):
        adds = counters(group, terms)
        if not adds:
            continue
        item = SettlementTotalsModel(merchant_day_key(merchant_id, day), f"{channel}#{shard_of(shard_key)}")
        actions = [NumberAttribute(attr_name=name).add(value) for name, value in sorted(adds.items())]
        updates.append(TotalsUpdate(item, actions))
    return updates


def add_totals(tx: TransactWrite, merchant_id: str, day: str, shard_key: str, entries: Sequence[EntryView],
               terms: Terms | None) -> None:
    """Add the entries' totals to the transaction that books them (no condition: ADD commutes)."""
    for update in totals_updates(merchant_id, day, shard_key, entries, terms):
        tx.update(update.item, actions=update.actions)


def read_totals(merchant_id: str, day: str) -> Iterator[tuple[str, dict[str, int]]]:
    """(channel, counters) of each totals item of a merchant-day: one strongly consistent Query, paged
    (a day holds 4 items per channel, far below a page)."""
    connection = SettlementTotalsModel._get_connection()
    start = None
    while True:
        page = connection.query(merchant_day_key(merchant_id, day), consistent_read=True, exclusive_start_key=start)
        for raw in page.get("Items", ()):
            channel = raw["channel_shard"]["S"].rpartition("#")[0]
            yield channel, {name: int(value["N"]) for name, value in raw.items() if "N" in value}
        start = page.get("LastEvaluatedKey")
        if not start:
            return


# --- the merchant's terms at booking time -------------------------------------------------------

class _MerchantTerms(Protocol):
    scheme: int
    fee_rate_ppm: int
    dealer_share_ppm: int


def no_terms(merchant_id: str) -> Terms | None:
    """Count, do not price: settlement then settles such a day from its entries."""
    return None


def terms_from(merchant_of: Callable[[str], Any]) -> TermsLookup:
    """A TermsLookup over Directory.merchant (cached per container: a payment has read it already).
    A merchant with nonsense rates gets None: a booking never fails for settlement's sake."""

    def lookup(merchant_id: str) -> Terms | None:
        try:
            merchant: _MerchantTerms | None = merchant_of(merchant_id)
            if merchant is None:
                return None
            return Terms(int(merchant.scheme), int(merchant.fee_rate_ppm), int(merchant.dealer_share_ppm))
        except DomainError:
            return None
        except Exception as error:  # a directory read failing must not fail a payment: count, do not price
            log.warning("settlement terms of %s unavailable (%s): totals not priced", merchant_id,
                        type(error).__name__)
            return None

    return lookup


def entry_view(item: Any) -> EntryView:
    """What totals and settlement read of a LedgerEntryModel about to be written."""
    return EntryView(item.account_id, item.entry_id, item.kind, int(item.amount_fen), item.wallet, item.channel)


def views(items: Iterable[Any]) -> list[EntryView]:
    return [entry_view(item) for item in items]


def add_card_totals(tx: TransactWrite, movement: Any) -> None:
    """A card transaction's entries (store/cards.py Movement: merchant_id, account_id, at, entries) into
    the day's "card" totals: reported beside the settlement, never settled, so no terms are needed."""
    account = f"{CARD_ACCOUNT_PREFIX}{movement.account_id}"
    entries = [EntryView(account, spec.entry_id, spec.kind, int(spec.amount_fen), spec.wallet.value, "card")
               for spec in movement.entries]
    add_totals(tx, movement.merchant_id, business_date(movement.at).isoformat(), movement.account_id, entries, None)
