"""PynamoDB models: the one declaration of every table and index.

The local stack creates the tables from these models and infra/ builds the CloudFormation
resources from the same schemas (infra/build_template.py), so there is no second list to drift.
Access patterns and the key or index serving each are in docs/access-patterns.md.

Table names come from Settings.table_prefix at bind time (store/connection.py).
"""
from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model


class TableModel(Model):
    """The base of every table's model (billing mode and region; the name prefix comes at bind time)."""

    class Meta:
        abstract = True
        billing_mode = "PAY_PER_REQUEST"
        region = "ap-east-1"


class DealerModel(TableModel):
    class Meta(TableModel.Meta):
        table_name = "dealers"

    dealer_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    login = UnicodeAttribute()
    password_hash = UnicodeAttribute()  # scrypt, see services/passwords.py
    created_at = NumberAttribute()


class MerchantsByDealer(GlobalSecondaryIndex["MerchantModel"]):
    class Meta:
        index_name = "by_dealer"
        projection = AllProjection()

    dealer_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)


class MerchantModel(TableModel):
    class Meta(TableModel.Meta):
        table_name = "merchants"

    merchant_id = UnicodeAttribute(hash_key=True)
    dealer_id = UnicodeAttribute()
    name = UnicodeAttribute()
    scheme = NumberAttribute()  # 1 direct, 2 bank aggregator
    fee_rate_ppm = NumberAttribute(default=6_000)
    dealer_share_ppm = NumberAttribute(default=1_000)
    # {wallet: {"kind", "settings": {...}, "sealed": "<KMS ciphertext of the secret settings>"}}
    channels = JSONAttribute(default=dict)
    # scheme 2: what the bank issued: {"wechat_sub_mch_id", "alipay_app_auth_token" (sealed)}
    bank_binding = JSONAttribute(default=dict)
    late_payment_policy = UnicodeAttribute(default="refund")  # or "accept"
    status = UnicodeAttribute(default="active")
    created_at = NumberAttribute()
    by_dealer = MerchantsByDealer()


class ProviderModel(TableModel):
    """A service provider's own channel accounts (the bank of scheme 2), shared by its sub-merchants."""

    class Meta(TableModel.Meta):
        table_name = "providers"

    provider_id = UnicodeAttribute(hash_key=True)
    channels = JSONAttribute(default=dict)  # same shape as MerchantModel.channels


class SiteModel(TableModel):
    class Meta(TableModel.Meta):
        table_name = "sites"

    site_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute()
    name = UnicodeAttribute()


class EdgeAgentModel(TableModel):
    class Meta(TableModel.Meta):
        table_name = "edge_agents"

    agent_id = UnicodeAttribute(hash_key=True)
    site_id = UnicodeAttribute()
    merchant_id = UnicodeAttribute()
    secret_sealed = UnicodeAttribute()  # KMS ciphertext of the HMAC key the agent signs with
    status = UnicodeAttribute(default="active")
    created_at = NumberAttribute()


class TerminalsByAgent(GlobalSecondaryIndex["TerminalModel"]):
    class Meta:
        index_name = "by_agent"
        projection = AllProjection()

    agent_id = UnicodeAttribute(hash_key=True)
    terminal_id = UnicodeAttribute(range_key=True)


class TerminalsByMerchant(GlobalSecondaryIndex["TerminalModel"]):
    """A merchant's terminals with their link status: the operators' terminal list."""

    class Meta:
        index_name = "by_merchant"
        projection = AllProjection()

    merchant_id = UnicodeAttribute(hash_key=True)
    terminal_id = UnicodeAttribute(range_key=True)


class TerminalModel(TableModel):
    class Meta(TableModel.Meta):
        table_name = "terminals"

    terminal_id = UnicodeAttribute(hash_key=True)
    agent_id = UnicodeAttribute()
    merchant_id = UnicodeAttribute()
    site_id = UnicodeAttribute()
    name = UnicodeAttribute(default="")
    key_sealed = UnicodeAttribute()  # KMS ciphertext of the terminal's LOGIN key
    status = UnicodeAttribute(default="active")
    online = BooleanAttribute(default=False)
    last_seen_at = NumberAttribute(default=0)
    # From the agents' status reports (store/terminals.py); None until an agent reported them (a count
    # also goes back to None when the stored report did not carry it):
    terminal_offline_pending = NumberAttribute(null=True)  # records the terminal says it holds (HEARTBEAT)
    agent_offline_pending = NumberAttribute(null=True)  # the terminal's records the agent holds for upload
    status_reported_at = NumberAttribute(null=True)  # the cloud's clock when that report was stored, whole seconds
    # The stored report's own time, Unix ms: the agent's clock when it took the report (the cloud's on
    # arrival for an agent that does not send reported_at). Only orders the reports (a report not newer
    # is stale); operators never see it, as it may run ahead of the cloud's clock.
    status_report_ms = NumberAttribute(null=True)
    by_agent = TerminalsByAgent()
    by_merchant = TerminalsByMerchant()


class OrderEventsByAgent(GlobalSecondaryIndex["OrderModel"]):
    """Sparse: only orders that reached PAID or CLOSED carry event_key. The edge event feed."""

    class Meta:
        index_name = "events_by_agent"
        projection = AllProjection()

    agent_id = UnicodeAttribute(hash_key=True)
    event_key = UnicodeAttribute(range_key=True)  # "<event ms, 15 digits>#<order_id>"


class OpenOrdersByExpiry(GlobalSecondaryIndex["OrderModel"]):
    """Sparse: only CREATED orders carry expiry_bucket ("<UTC hour>#<shard>"). The expiry job's work list."""

    class Meta:
        index_name = "open_by_expiry"
        projection = KeysOnlyProjection()

    expiry_bucket = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute(range_key=True)


class LateRefundsPending(GlobalSecondaryIndex["OrderModel"]):
    """Sparse: orders with a late payment still to refund. The expiry job retries them."""

    class Meta:
        index_name = "late_refunds"
        projection = KeysOnlyProjection()

    late_refund = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute(range_key=True)


class OrdersByMerchantDay(GlobalSecondaryIndex["OrderModel"]):
    """Every order under "<merchant_id>#<Beijing date of creation>": console lists, settlement reads."""

    class Meta:
        index_name = "by_merchant_day"
        projection = AllProjection()

    merchant_day = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute(range_key=True)


class OrderModel(TableModel):
    class Meta(TableModel.Meta):
        table_name = "orders"

    order_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute()
    terminal_id = UnicodeAttribute()
    agent_id = UnicodeAttribute()
    txn = NumberAttribute()
    amount_fen = NumberAttribute()
    kind = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = NumberAttribute()
    expires_at = NumberAttribute()
    wallet = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    channel_trade_no = UnicodeAttribute(null=True)
    paid_at = NumberAttribute(null=True)
    closed_at = NumberAttribute(null=True)
    refunded_fen = NumberAttribute(default=0)
    # Merchant refunds sent to the platform and not yet confirmed or failed: held so that they and new
    # refunds together never exceed the payment (store/refunds.py). Absent: nothing pending.
    refund_pending_fen = NumberAttribute(null=True)
    opened_wallets = ListAttribute(of=UnicodeAttribute, default=list)
    qr = UnicodeAttribute(null=True)  # what the terminal shows: our aggregated URL or a channel's code URL
    qr_wechat = UnicodeAttribute(null=True)  # the channels' own code URLs once opened in that wallet
    qr_alipay = UnicodeAttribute(null=True)
    merchant_day = UnicodeAttribute()
    event_key = UnicodeAttribute(null=True)
    expiry_bucket = UnicodeAttribute(null=True)
    # "PENDING" while a payment that came after the order closed (or paid through another wallet)
    # still has to be refunded; the late payments themselves are ledger entries of the order.
    late_refund = UnicodeAttribute(null=True)
    late_refunds = LateRefundsPending()
    events_by_agent = OrderEventsByAgent()
    open_by_expiry = OpenOrdersByExpiry()
    by_merchant_day = OrdersByMerchantDay()


class LedgerByMerchantDay(GlobalSecondaryIndex["LedgerEntryModel"]):
    """Every entry under "<merchant_id>#<Beijing business date>": settlement and statements page through it."""

    class Meta:
        index_name = "by_merchant_day"
        projection = AllProjection()

    merchant_day = UnicodeAttribute(hash_key=True)
    entry_ref = UnicodeAttribute(range_key=True)  # "<account_id>|<entry_id>", unique


class LedgerEntryModel(TableModel):
    """Immutable money movements. entry_id is deterministic, so a retried write is refused, not doubled.

    QR payments live in the order's own account ("order#<id>": payment, late payments, refunds),
    which spreads writes over partitions; the merchant-day index gathers them for settlement.
    """

    class Meta(TableModel.Meta):
        table_name = "ledger"

    account_id = UnicodeAttribute(hash_key=True)  # e.g. "order#<id>"
    entry_id = UnicodeAttribute(range_key=True)  # e.g. "payment"
    merchant_id = UnicodeAttribute()
    merchant_day = UnicodeAttribute()
    entry_ref = UnicodeAttribute()
    amount_fen = NumberAttribute()  # signed: + money in for the account, - money out
    kind = UnicodeAttribute()  # QR_PAYMENT, LATE_PAYMENT, LATE_REFUND, REFUND ...
    order_id = UnicodeAttribute(null=True)
    wallet = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    channel_trade_no = UnicodeAttribute(null=True)
    business_date = UnicodeAttribute()  # Asia/Shanghai date
    created_at = NumberAttribute()
    # Card payments only: the limit counters the payment moved, "<day>|<meal key or empty>"; a
    # reversal gives them back (store/cards.py). Absent: it counted towards no limit.
    card_counters = UnicodeAttribute(null=True)
    by_merchant_day = LedgerByMerchantDay()


class RefundRequestsOpen(GlobalSecondaryIndex["DedupeModel"]):
    """Sparse: only refund request records (`refundreq#`) still open carry refund_queue: "pending#<shard
    0..3>" while the platform has not confirmed them, "attention" when a late payment's refund failed and
    waits for a person. The refund sweep job's work list (store/refunds.py)."""

    class Meta:
        index_name = "refunds_open"
        projection = KeysOnlyProjection()

    refund_queue = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class DedupeModel(TableModel):
    """Permanent idempotency records for money: (terminal, txn), platform trade numbers.

    Edge request nonces live here too, with `expires_at`: those are not money and may be reused
    after their window (a conditional put checks expires_at; no TTL is relied upon).
    """

    class Meta(TableModel.Meta):
        table_name = "dedupe"

    dedupe_key = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    ref = UnicodeAttribute(default="")  # e.g. the order id it resolved to
    answer = JSONAttribute(default=dict)  # the first answer, returned again to a repeat
    request_hash = UnicodeAttribute(default="")
    created_at = NumberAttribute()
    expires_at = NumberAttribute(null=True)
    refund_queue = UnicodeAttribute(null=True)  # refund requests only, see RefundRequestsOpen
    refunds_open = RefundRequestsOpen()


from chalicelib.store.card_models import CARD_MODELS  # noqa: E402 - declared in their own module
from chalicelib.store.settlement_models import SETTLEMENT_MODELS  # noqa: E402 - they subclass TableModel above

ALL_MODELS: tuple[type[Model], ...] = (
    DealerModel,
    MerchantModel,
    ProviderModel,
    SiteModel,
    EdgeAgentModel,
    TerminalModel,
    OrderModel,
    LedgerEntryModel,
    DedupeModel,
    *CARD_MODELS,
    *SETTLEMENT_MODELS,
)
