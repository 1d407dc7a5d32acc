"""PynamoDB models of settlement, the dealer ledger, licences, job runs and reconciliation.

SETTLEMENT_MODELS is part of store/models.py ALL_MODELS: bound, created and templated with every other
table (store/connection.py, infra/).

Access patterns:
- a merchant's settlement records of a day, or of a date range (statements): SettlementModel by
  merchant_id, record_key "<date>#<seq>" (seq 00 = the day, 01.. = its adjustments);
- every merchant's records of one day (bank file reconciliation, operator): SettlementModel.by_day;
- a dealer's ledger of a month (commission earned, licence fees owed): DealerLedgerModel by dealer_id,
  entry_id "<date>#<kind>#..." between the first and the last day of the month;
- a merchant's licence: LicenceModel by merchant_id; a dealer's licences: LicenceModel.by_dealer;
- a merchant-day's running totals (settlement): SettlementTotalsModel (store/settlement_totals.py) by
  merchant_day, channel_shard "<channel>#<0..3>";
- a job's run for a day: JobRunModel by run_id "<job>#<date>";
- a merchant-day's differences and carried items: ReconciliationModel by merchant_day, item_key;
  every difference of a day: ReconciliationModel.by_day.
"""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.store.models import TableModel
from chalicelib.store.settlement_totals import SettlementTotalsModel


class SettlementsByDay(GlobalSecondaryIndex["SettlementModel"]):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    business_date = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)


class SettlementModel(TableModel):
    """Immutable money: one per (merchant, day, seq), written once with its payout and its commission entry.
    Only the payout's delivery is recorded later (payout_sent_at, payout_ref: set once, conditionally)."""

    class Meta(TableModel.Meta):
        table_name = "settlements"

    merchant_id = UnicodeAttribute(hash_key=True)
    record_key = UnicodeAttribute(range_key=True)  # "<yyyy-mm-dd>#<seq, 2 digits>"
    business_date = UnicodeAttribute()
    seq = NumberAttribute()
    dealer_id = UnicodeAttribute()
    scheme = NumberAttribute()
    fee_rate_ppm = NumberAttribute()
    dealer_share_ppm = NumberAttribute()
    gross_fen = NumberAttribute()
    refunds_fen = NumberAttribute()
    fee_fen = NumberAttribute()
    dealer_share_fen = NumberAttribute()
    net_fen = NumberAttribute()
    payout_fen = NumberAttribute()
    payout_id = UnicodeAttribute(null=True)  # scheme 2: the bank's payout instruction, once per record
    payout_sent_at = NumberAttribute(null=True)  # when the bank accepted the instruction (payout job)
    payout_ref = UnicodeAttribute(null=True)  # the bank's reference of the accepted instruction
    lines = JSONAttribute()  # per channel: the ChannelLine fields
    reported = JSONAttribute()  # card, late and unknown kinds: shown, not settled
    run_id = UnicodeAttribute()
    created_at = NumberAttribute()
    by_day = SettlementsByDay()


class DealerLedgerModel(TableModel):
    """A dealer's money with the platform: + commission earned, - licence fees owed. Immutable entries."""

    class Meta(TableModel.Meta):
        table_name = "dealer_ledger"

    dealer_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)  # "<yyyy-mm-dd>#commission#..." / "<yyyy-mm-dd>#licence#..."
    kind = UnicodeAttribute()  # COMMISSION, LICENCE_FEE
    amount_fen = NumberAttribute()  # signed: + owed to the dealer, - owed by the dealer
    merchant_id = UnicodeAttribute()
    business_date = UnicodeAttribute()
    ref = UnicodeAttribute(default="")  # the settlement record or the licence term it comes from
    created_at = NumberAttribute()


class LicencesByDealer(GlobalSecondaryIndex["LicenceModel"]):
    class Meta:
        index_name = "by_dealer"
        projection = AllProjection()

    dealer_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)


class LicenceModel(TableModel):
    """A merchant deployment's licence: its current term; each term's fee is a dealer-ledger entry."""

    class Meta(TableModel.Meta):
        table_name = "licences"

    merchant_id = UnicodeAttribute(hash_key=True)
    dealer_id = UnicodeAttribute()
    terms = NumberAttribute()  # how many yearly terms were bought: the compare-and-set of renewals
    term_starts_on = UnicodeAttribute()  # the current term's first day (Asia/Shanghai date)
    expires_on = UnicodeAttribute()  # the day after the current term's last day
    grace_days = NumberAttribute(default=15)
    updated_at = NumberAttribute()
    by_dealer = LicencesByDealer()


class JobRunModel(TableModel):
    """Progress of a scheduled job for one day (not money: plain puts and updates)."""

    class Meta(TableModel.Meta):
        table_name = "job_runs"

    run_id = UnicodeAttribute(hash_key=True)  # "settlement#2026-11-18", "reconciliation#2026-11-18"
    status = UnicodeAttribute()  # RUNNING, DONE
    attempts = NumberAttribute(default=0)
    total = NumberAttribute(default=0)
    done = NumberAttribute(default=0)
    detail = JSONAttribute(default=dict)
    started_at = NumberAttribute()
    updated_at = NumberAttribute()


class DifferencesByDay(GlobalSecondaryIndex["ReconciliationModel"]):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    business_date = UnicodeAttribute(hash_key=True)
    item_ref = UnicodeAttribute(range_key=True)  # "<merchant>|<item_key>"


class ReconciliationModel(TableModel):
    """A difference found for a merchant-day, or an item carried to the next day's match."""

    class Meta(TableModel.Meta):
        table_name = "reconciliation"

    merchant_day = UnicodeAttribute(hash_key=True)  # "<merchant>#<yyyy-mm-dd>"
    item_key = UnicodeAttribute(range_key=True)  # "diff#<source>#<kind>#<ref>" / "carry#<side>#<source>#<ref>"
    business_date = UnicodeAttribute()
    item_ref = UnicodeAttribute()
    kind = UnicodeAttribute()
    source = UnicodeAttribute()  # wechat / alipay bill, or "bank" (the bank's settlement file)
    ref = UnicodeAttribute()
    ours = JSONAttribute(default=dict)
    theirs = JSONAttribute(default=dict)
    run_id = UnicodeAttribute()
    created_at = NumberAttribute()
    by_day = DifferencesByDay()


SETTLEMENT_MODELS: tuple[type[Model], ...] = (
    SettlementModel, DealerLedgerModel, LicenceModel, JobRunModel, ReconciliationModel, SettlementTotalsModel,
)
