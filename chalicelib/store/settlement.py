"""Settlement reads and writes: the merchants to settle, a merchant-day's ledger, the settlement records
(each written once, with its dealer commission, in one TransactWriteItems) and the jobs' run records.

Cost of a day: the job lists the merchants (one paged Scan of the small merchants table, a scheduled job's
read, never a request path), then per merchant one Query of its settlement records, one Query of its
day's running totals (store/settlement_totals.py: 4 items per channel, written by the money transactions
themselves) and, when something changed, one TransactWriteItems. So calls, bytes read and our CPU all
grow with merchants, not with payments (bench/settlement measures it).

The entries path (source="entries": one Query of the ledger's by_merchant_day index, paged, projected
to the five attributes settlement reads) stays: it is the cross-check of the totals in tests, the
operator's `--from-entries` re-run, and the fallback for a merchant-day whose totals were priced with
other terms than the day settles with (a rate changed that day).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Iterator

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.domain.reconciliation import Difference, Item
from chalicelib.domain.settlement import (
    ChannelLine,
    EntryView,
    ReportedLine,
    Settlement,
    SettlementRecord,
    Terms,
    commission_entry_id,
    record_key,
    settle,
)
from chalicelib.store.connection import transaction_connection
from chalicelib.store.models import LedgerEntryModel, MerchantModel
from chalicelib.store.orders import ConditionFailed, is_condition_failure
from chalicelib.domain.settlement_totals import settlement_from_totals
from chalicelib.store.settlement_models import DealerLedgerModel, JobRunModel, ReconciliationModel, SettlementModel
from chalicelib.store.settlement_totals import read_totals

ENTRY_ATTRIBUTES = ["entry_ref", "kind", "amount_fen", "wallet", "channel"]  # entry_ref = "<account>|<entry id>"
MERCHANT_ATTRIBUTES = ["merchant_id", "dealer_id", "scheme", "fee_rate_ppm", "dealer_share_ppm", "bank_binding"]


@contextmanager
def conditional_transaction(settings: Settings) -> Iterator[TransactWrite]:
    """One TransactWriteItems; a failed condition raises ConditionFailed (the caller re-reads and decides)."""
    try:
        with TransactWrite(connection=transaction_connection(settings)) as tx:
            yield tx
    except TransactWriteError as error:
        if is_condition_failure(error):
            raise ConditionFailed(str(error)) from error
        raise


@dataclass(frozen=True)
class MerchantRow:
    """A merchant's settlement terms as stored (checked by domain Terms when used)."""

    merchant_id: str
    dealer_id: str
    scheme: int
    fee_rate_ppm: int
    dealer_share_ppm: int
    bank_ids: tuple[tuple[str, str], ...] = ()  # scheme 2: (wallet, the bank's id of this sub-merchant)


@dataclass(frozen=True)
class DayRead:
    """A merchant-day as settlement sees it, and where it came from ("totals" or "entries")."""

    settlement: Settlement
    entries: int
    source: str


SOURCES = ("totals", "entries")


@dataclass(frozen=True)
class StoredRecord:
    record: SettlementRecord
    payout_id: str | None
    run_id: str
    created_at: float


def to_settlement(lines: list[dict], reported: list[dict]) -> Settlement:
    return Settlement(tuple(ChannelLine(**line) for line in lines), tuple(ReportedLine(**line) for line in reported))


def _to_record(item: SettlementModel) -> StoredRecord:
    terms = Terms(int(item.scheme), int(item.fee_rate_ppm), int(item.dealer_share_ppm))
    record = SettlementRecord(item.merchant_id, item.dealer_id, date.fromisoformat(item.business_date),
                              int(item.seq), terms, to_settlement(item.lines, item.reported), int(item.payout_fen))
    return StoredRecord(record, item.payout_id, item.run_id, float(item.created_at))


def merchant_day_items(merchant_id: str, day: date, attributes: list[str],
                       page_size: int | None = None) -> Iterator[dict[str, str]]:
    """A merchant-day's ledger entries from the by_merchant_day index, projected to `attributes`, page by
    page, as plain strings. The low-level query on purpose: a day holds thousands of entries, and building a
    PynamoDB model for each cost more CPU than all the rest of the settlement job (bench/settlement)."""
    connection = LedgerEntryModel._get_connection()
    index_name = LedgerEntryModel.by_merchant_day.Meta.index_name
    start = None
    while True:
        page = connection.query(f"{merchant_id}#{day.isoformat()}", index_name=index_name,
                                attributes_to_get=attributes, exclusive_start_key=start, limit=page_size)
        for item in page.get("Items", ()):
            yield {name: next(iter(value.values())) for name, value in item.items()}
        start = page.get("LastEvaluatedKey")
        if not start:
            return


class SettlementStore:
    def __init__(self, settings: Settings, page_size: int | None = None, source: str = "totals") -> None:
        if source not in SOURCES:
            raise ValueError(f"source is one of {SOURCES}")
        self._settings = settings
        self._page_size = page_size  # None: DynamoDB's 1 MB pages; tests set a few entries to see paging
        self._source = source

    @property
    def source(self) -> str:
        return self._source

    # --- reads ------------------------------------------------------------------------------

    def merchants(self) -> list[MerchantRow]:
        """Every merchant, by id (a paged Scan: the jobs' list, O(merchants), never on a request path)."""
        rows = [self._row(item) for item in MerchantModel.scan(attributes_to_get=MERCHANT_ATTRIBUTES)]
        return sorted(rows, key=lambda row: row.merchant_id)

    def merchant(self, merchant_id: str) -> MerchantRow | None:
        try:
            return self._row(MerchantModel.get(merchant_id, attributes_to_get=MERCHANT_ATTRIBUTES))
        except DoesNotExist:
            return None

    @staticmethod
    def _row(item: MerchantModel) -> MerchantRow:
        binding = item.bank_binding or {}
        ids = tuple((wallet, str(binding[key])) for wallet, key in
                    (("wechat", "wechat_sub_mch_id"), ("alipay", "alipay_seller_id")) if binding.get(key))
        return MerchantRow(item.merchant_id, item.dealer_id, int(item.scheme), int(item.fee_rate_ppm),
                           int(item.dealer_share_ppm), ids)

    def day(self, merchant_id: str, day: date, terms: Terms) -> DayRead:
        """The merchant-day settled with `terms`: from its running totals (one Query), or from its
        entries when so configured or when the totals cannot tell (priced with other terms)."""
        if self._source == "totals":
            found = settlement_from_totals(terms, read_totals(merchant_id, day.isoformat()))
            if found is not None:
                return DayRead(found[0], found[1], "totals")
        entries = list(self.entries(merchant_id, day))
        return DayRead(settle(terms, entries), len(entries), "entries")

    def entries(self, merchant_id: str, day: date) -> Iterator[EntryView]:
        """The merchant-day's ledger from the by_merchant_day index, page by page."""
        for item in merchant_day_items(merchant_id, day, ENTRY_ATTRIBUTES, self._page_size):
            account_id, _, entry_id = item["entry_ref"].partition("|")
            yield EntryView(account_id, entry_id, item["kind"], int(item["amount_fen"]), item.get("wallet"),
                            item.get("channel"))

    def totals_agree(self, merchant_id: str, day: date, terms: Terms, entries: list[EntryView]) -> bool | None:
        """Whether the day's running totals settle exactly as these entries (the day's whole ledger) do;
        None when the totals were priced with other terms and cannot tell."""
        found = settlement_from_totals(terms, read_totals(merchant_id, day.isoformat()))
        if found is None:
            return None
        return found == (settle(terms, entries), len(entries))

    def records(self, merchant_id: str, day: date) -> list[StoredRecord]:
        query = SettlementModel.query(merchant_id, SettlementModel.record_key.startswith(f"{day.isoformat()}#"),
                                      consistent_read=True)
        return [_to_record(item) for item in query]

    def records_between(self, merchant_id: str, first: date, last: date) -> list[StoredRecord]:
        """A merchant's records from `first` to `last` inclusive, by day then seq."""
        condition = SettlementModel.record_key.between(f"{first.isoformat()}#", f"{last.isoformat()}#99")
        return [_to_record(item) for item in SettlementModel.query(merchant_id, condition)]

    def records_of_day(self, day: date) -> list[StoredRecord]:
        return [_to_record(item) for item in SettlementModel.by_day.query(day.isoformat())]

    # --- the one write --------------------------------------------------------------------

    def write(self, record: SettlementRecord, run_id: str, now: float) -> bool:
        """The record (with its payout) and the dealer's commission entry, in one transaction, each
        only if absent. False when this (merchant, day, seq) was written already: by an earlier run
        that crashed after writing, or by a concurrent run. Never a second payout either way."""
        total = record.settlement.total()
        item = SettlementModel(
            record.merchant_id, record_key(record.business_date, record.seq),
            business_date=record.business_date.isoformat(), seq=record.seq, dealer_id=record.dealer_id,
            scheme=record.terms.scheme, fee_rate_ppm=record.terms.fee_rate_ppm,
            dealer_share_ppm=record.terms.dealer_share_ppm, gross_fen=total.gross_fen,
            refunds_fen=total.refunds_fen, fee_fen=total.fee_fen, dealer_share_fen=total.dealer_share_fen,
            net_fen=total.net_fen, payout_fen=record.payout_fen, payout_id=record.payout_id,
            lines=[asdict(line) for line in record.settlement.lines],
            reported=[asdict(line) for line in record.settlement.reported], run_id=run_id, created_at=now,
        )
        try:
            with conditional_transaction(self._settings) as tx:
                tx.save(item, condition=SettlementModel.record_key.does_not_exist())
                if record.commission_fen:
                    entry_id = commission_entry_id(record.business_date, record.merchant_id, record.seq)
                    tx.save(DealerLedgerModel(
                        record.dealer_id, entry_id, kind="COMMISSION", amount_fen=record.commission_fen,
                        merchant_id=record.merchant_id, business_date=record.business_date.isoformat(),
                        ref=f"{record.merchant_id}|{item.record_key}", created_at=now,
                    ), condition=DealerLedgerModel.entry_id.does_not_exist())
        except ConditionFailed:
            return False
        return True


@dataclass(frozen=True)
class PayoutRow:
    """A settlement record's payout instruction and whether the bank has accepted it."""

    merchant_id: str
    record_key: str
    payout_id: str
    business_date: str
    amount_fen: int
    sent_at: float | None
    bank_ref: str | None


class PayoutStore:
    """The payout instructions settlement wrote on its records, and their delivery to the bank."""

    def of_day(self, day: date) -> list[PayoutRow]:
        """Every record of the day that carries a payout (the by_day index; one page per ~thousand merchants)."""
        rows = [PayoutRow(i.merchant_id, i.record_key, i.payout_id, i.business_date, int(i.payout_fen),
                          float(i.payout_sent_at) if i.payout_sent_at is not None else None, i.payout_ref)
                for i in SettlementModel.by_day.query(day.isoformat()) if i.payout_id]
        return sorted(rows, key=lambda row: (row.merchant_id, row.record_key))

    def sent(self, merchant_id: str, record_key: str) -> bool:
        """Strongly consistent: the index may lag behind a mark written by a run a moment ago."""
        item = SettlementModel.get(merchant_id, record_key, consistent_read=True,
                                   attributes_to_get=["merchant_id", "record_key", "payout_sent_at"])
        return item.payout_sent_at is not None

    def mark_sent(self, row: PayoutRow, bank_ref: str, now: float) -> bool:
        """Record the bank's acceptance once; False when an earlier run recorded it already."""
        try:
            SettlementModel(row.merchant_id, row.record_key).update(
                actions=[SettlementModel.payout_sent_at.set(now), SettlementModel.payout_ref.set(bank_ref)],
                condition=SettlementModel.record_key.exists() & SettlementModel.payout_sent_at.does_not_exist())
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True


@dataclass(frozen=True)
class DealerEntry:
    entry_id: str
    kind: str
    amount_fen: int
    merchant_id: str
    business_date: str
    ref: str


def dealer_entries(dealer_id: str, first: date, last: date) -> list[DealerEntry]:
    """A dealer's ledger from `first` to `last` inclusive (entry ids start with the day)."""
    condition = DealerLedgerModel.entry_id.between(f"{first.isoformat()}#", f"{last.isoformat()}#~")
    return [DealerEntry(i.entry_id, i.kind, int(i.amount_fen), i.merchant_id, i.business_date, i.ref)
            for i in DealerLedgerModel.query(dealer_id, condition)]


class JobRunStore:
    """The progress record of a job's day: what an operator (or a re-run) looks at."""

    def get(self, run_id: str) -> JobRunModel | None:
        try:
            return JobRunModel.get(run_id, consistent_read=True)
        except DoesNotExist:
            return None

    def start(self, run_id: str, total: int, now: float) -> None:
        JobRunModel(run_id).update(actions=[
            JobRunModel.status.set("RUNNING"), JobRunModel.attempts.add(1), JobRunModel.total.set(total),
            JobRunModel.done.set(0), JobRunModel.started_at.set(now), JobRunModel.updated_at.set(now),
        ])

    def progress(self, run_id: str, done: int, detail: dict, now: float, status: str = "RUNNING") -> None:
        JobRunModel(run_id).update(actions=[
            JobRunModel.status.set(status), JobRunModel.done.set(done), JobRunModel.detail.set(detail),
            JobRunModel.updated_at.set(now),
        ])


# --- reconciliation ---------------------------------------------------------------------------

RECON_ATTRIBUTES = ["account_id", "entry_id", "kind", "amount_fen", "wallet", "order_id", "channel_trade_no",
                    "created_at", "channel"]


@dataclass(frozen=True)
class LedgerLine:
    account_id: str
    entry_id: str
    kind: str
    amount_fen: int
    wallet: str | None
    order_id: str | None
    channel_trade_no: str | None
    created_at: float
    channel: str | None = None

    def view(self) -> EntryView:
        return EntryView(self.account_id, self.entry_id, self.kind, self.amount_fen, self.wallet, self.channel)


def ledger_lines(merchant_id: str, day: date) -> Iterator[LedgerLine]:
    """The merchant-day's ledger with what reconciliation matches on (paged index query)."""
    for i in merchant_day_items(merchant_id, day, RECON_ATTRIBUTES):
        yield LedgerLine(i["account_id"], i["entry_id"], i["kind"], int(i["amount_fen"]), i.get("wallet"),
                         i.get("order_id"), i.get("channel_trade_no"), float(i["created_at"]), i.get("channel"))


_ITEM_FIELDS = {f.name for f in fields(Item)}


def _item(data: dict) -> Item:
    return Item(**{k: v for k, v in data.items() if k in _ITEM_FIELDS})


class ReconciliationStore:
    """A merchant-day's differences and carried items. Not money: a re-run replaces the day's items."""

    def carried(self, merchant_id: str, day: date) -> tuple[list[Item], list[Item]]:
        query = ReconciliationModel.query(f"{merchant_id}#{day.isoformat()}", ReconciliationModel.item_key.startswith("carry#"),
                                          consistent_read=True)
        ours: list[Item] = []
        theirs: list[Item] = []
        for item in query:
            (ours if item.item_key.startswith("carry#ours#") else theirs).append(_item(item.ours or item.theirs))
        return ours, theirs

    def replace_day(self, partition: str, merchant_id: str, day: date, differences: list[Difference],
                    carry_ours: list[Item], carry_theirs: list[Item], run_id: str, now: float) -> None:
        """Write the partition's items of this run and delete the ones an earlier run of the day left.
        `partition` is "<merchant>#<day>" for the bills, "<merchant>#<day>#bank" for the bank file."""

        def model(item_key: str, kind: str, source: str, ref: str, ours: Item | None, theirs: Item | None,
                  note: str = "") -> ReconciliationModel:
            return ReconciliationModel(
                partition, item_key, business_date=day.isoformat(), item_ref=f"{merchant_id}|{item_key}",
                kind=kind, source=source, ref=ref, ours=(asdict(ours) if ours else {}) | ({"note": note} if note else {}),
                theirs=asdict(theirs) if theirs else {}, run_id=run_id, created_at=now)

        items = [model(f"diff#{d.key}", d.kind.value, d.source, d.ref, d.ours, d.theirs, d.note) for d in differences]
        items += [model(f"carry#ours#{i.source}#{i.kind}#{i.ref}", "CARRIED", i.source, i.ref, i, None)
                  for i in carry_ours]
        items += [model(f"carry#theirs#{i.source}#{i.kind}#{i.ref}", "CARRIED", i.source, i.ref, None, i)
                  for i in carry_theirs]
        keep = {item.item_key for item in items}
        stale = [old for old in ReconciliationModel.query(partition, attributes_to_get=["merchant_day", "item_key"],
                                                          consistent_read=True)
                 if old.item_key not in keep]
        with ReconciliationModel.batch_write() as batch:
            for item in items:
                batch.save(item)
            for old in stale:
                batch.delete(old)

    def of_day(self, day: date) -> list[ReconciliationModel]:
        """Every difference and carried item of a day (operator view, tests)."""
        return list(ReconciliationModel.by_day.query(day.isoformat()))
