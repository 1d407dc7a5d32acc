"""PynamoDB models of IC-card accounts. CARD_MODELS is part of store/models.py ALL_MODELS, so they are
bound, created and templated with every other table (store/connection.py, infra/).

Access patterns:
- card payment: CardModel by "<merchant_id>#<card_no>" (the item holds the account's wallets and
  limit counters, so one read and one conditional write decide and book a payment);
- an account's live card: CardModel.by_account; a merchant's cards: CardModel.by_merchant (subsidy job);
- blacklist: CardBlacklistModel per merchant, version 0 is the head holding `latest`;
- edge acks: CardBlacklistAckModel per (merchant, terminal);
- rules and the operator token: CanteenRulesModel per merchant; the merchants with a monthly
  subsidy (subsidy job): the sparse CanteenRulesModel.with_subsidy index;
- offline records kept for the merchant: CardExceptionModel per (merchant, "<terminal>#<txn>");
- the 服务号 access token: WeChatMpTokenModel per app id (store/card_mp_tokens.py);
- online recharge: CardRechargeModel per recharge id; notices still to send in the sparse
  `notices_pending` index, refunds of recharges paid for a closed account in the sparse
  `refunds_pending` index; holders by WeChat openid in CardHolderModel.by_openid.
"""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model



class _Base(Model):
    """As store/models.py's base; not imported from there, so that models.py can import this module."""

    class Meta:
        abstract = True
        billing_mode = "PAY_PER_REQUEST"
        region = "ap-east-1"


class HoldersByMerchant(GlobalSecondaryIndex["CardHolderModel"]):
    class Meta:
        index_name = "by_merchant"
        projection = AllProjection()

    merchant_id = UnicodeAttribute(hash_key=True)
    holder_id = UnicodeAttribute(range_key=True)


class HoldersByOpenid(GlobalSecondaryIndex["CardHolderModel"]):
    """Sparse: holders who bound their WeChat (服务号 OAuth) to pay a recharge online."""

    class Meta:
        index_name = "by_openid"
        projection = AllProjection()

    wechat_openid = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)  # merchants sharing one 服务号 see the same openid


class CardHolderModel(_Base):
    class Meta(_Base.Meta):
        table_name = "card_holders"

    holder_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    number = UnicodeAttribute(default="")  # employee or student number
    class_code = UnicodeAttribute(default="default")
    phone = UnicodeAttribute(default="")
    wechat_openid = UnicodeAttribute(null=True)
    account_id = UnicodeAttribute()
    card_no = UnicodeAttribute(null=True)  # the card now holding the account
    status = UnicodeAttribute(default="active")  # or "deleted"
    created_at = NumberAttribute()
    by_merchant = HoldersByMerchant()
    by_openid = HoldersByOpenid()


class CardsByAccount(GlobalSecondaryIndex["CardModel"]):
    class Meta:
        index_name = "by_account"
        projection = KeysOnlyProjection()

    account_id = UnicodeAttribute(hash_key=True)
    card_key = UnicodeAttribute(range_key=True)


class CardsByMerchant(GlobalSecondaryIndex["CardModel"]):
    class Meta:
        index_name = "by_merchant"
        projection = KeysOnlyProjection()

    merchant_id = UnicodeAttribute(hash_key=True)
    card_key = UnicodeAttribute(range_key=True)


class CardModel(_Base):
    """One physical card; while active or lost it also holds its account's wallets and counters."""

    class Meta(_Base.Meta):
        table_name = "cards"

    card_key = UnicodeAttribute(hash_key=True)  # "<merchant_id>#<card_no>"
    merchant_id = UnicodeAttribute()
    card_no = UnicodeAttribute()
    account_id = UnicodeAttribute()
    holder_id = UnicodeAttribute()
    class_code = UnicodeAttribute(default="default")
    status = UnicodeAttribute()  # domain/cards.py CardStatus
    cash_fen = NumberAttribute(default=0)
    subsidy_fen = NumberAttribute(default=0)
    day = UnicodeAttribute(null=True)  # Beijing date of the day counters
    day_fen = NumberAttribute(default=0)
    day_count = NumberAttribute(default=0)
    meal = UnicodeAttribute(null=True)  # "<date>#<meal code>" of the meal counters
    meal_fen = NumberAttribute(default=0)
    meal_count = NumberAttribute(default=0)
    subsidy_month = UnicodeAttribute(null=True)  # "YYYY-MM" of the last monthly grant
    replaced_by = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    by_account = CardsByAccount()
    by_merchant = CardsByMerchant()


class CardBlacklistModel(_Base):
    """Versioned blacklist changes per merchant. Version 0 is the head: `latest` is the newest version."""

    class Meta(_Base.Meta):
        table_name = "card_blacklist"

    merchant_id = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(range_key=True)
    latest = NumberAttribute(null=True)  # head only
    card_no = UnicodeAttribute(null=True)  # changes only
    action = UnicodeAttribute(null=True)  # "add" or "remove"
    at = NumberAttribute()


class CardBlacklistAckModel(_Base):
    class Meta(_Base.Meta):
        table_name = "card_blacklist_acks"

    merchant_id = UnicodeAttribute(hash_key=True)
    terminal_id = UnicodeAttribute(range_key=True)
    version = NumberAttribute()
    acked_at = NumberAttribute()


class RulesWithSubsidy(GlobalSecondaryIndex["CanteenRulesModel"]):
    """Sparse: merchants whose rules grant a monthly subsidy to some class. The subsidy job's list
    of merchants (a Query of one small partition instead of a Scan of the table)."""

    class Meta:
        index_name = "with_subsidy"
        projection = KeysOnlyProjection()

    subsidy_grants = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)


class CanteenRulesModel(_Base):
    class Meta(_Base.Meta):
        table_name = "canteen_rules"

    merchant_id = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(default=0)  # the PARAMS version terminals see
    rules = JSONAttribute(default=dict)  # domain/canteen_rules.py rules_from_dict
    operator_token_sha256 = UnicodeAttribute(null=True)  # interim operator auth (api/cards.py)
    template = JSONAttribute(default=dict)  # 充值成功通知: template_id and field mapping
    subsidy_grants = UnicodeAttribute(null=True)  # "monthly" while some class has a monthly subsidy
    updated_at = NumberAttribute()
    with_subsidy = RulesWithSubsidy()


class CardExceptionModel(_Base):
    """An offline record that could not be booked: kept for the merchant to resolve, never dropped."""

    class Meta(_Base.Meta):
        table_name = "card_exceptions"

    merchant_id = UnicodeAttribute(hash_key=True)
    exception_id = UnicodeAttribute(range_key=True)  # "<terminal_id>#<txn>"
    terminal_id = UnicodeAttribute()
    txn = NumberAttribute()
    card_no = UnicodeAttribute()
    amount_fen = NumberAttribute()
    ts = NumberAttribute()
    offline_id = UnicodeAttribute(default="")
    code = UnicodeAttribute()  # why it was not booked (protocol.md result code)
    status = UnicodeAttribute(default="open")  # open, booked, dismissed
    created_at = NumberAttribute()


class RechargeNoticesPending(GlobalSecondaryIndex["CardRechargeModel"]):
    """Sparse: paid recharges whose 充值成功通知 is still to be sent. The retry job's work list."""

    class Meta:
        index_name = "notices_pending"
        projection = KeysOnlyProjection()

    notice_pending = UnicodeAttribute(hash_key=True)
    recharge_id = UnicodeAttribute(range_key=True)


class RechargeRefundsPending(GlobalSecondaryIndex["CardRechargeModel"]):
    """Sparse: recharges paid for an account closed meanwhile whose refund has not gone through yet
    ("PENDING", retried by the card job) or was given up on ("FAILED", for a person)."""

    class Meta:
        index_name = "refunds_pending"
        projection = KeysOnlyProjection()

    refund_pending = UnicodeAttribute(hash_key=True)
    recharge_id = UnicodeAttribute(range_key=True)


class RechargesUnpaid(GlobalSecondaryIndex["CardRechargeModel"]):
    """Sparse: recharges still CREATED ("CREATED", set at creation, removed when the payment is
    booked or the platform closed the trade), by creation time, for the job that asks the platform
    about payments whose notification never came."""

    class Meta:
        index_name = "recharges_unpaid"
        projection = KeysOnlyProjection()

    pending = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class CardRechargeModel(_Base):
    class Meta(_Base.Meta):
        table_name = "card_recharges"

    recharge_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute()
    account_id = UnicodeAttribute()
    holder_id = UnicodeAttribute()
    card_no = UnicodeAttribute()
    openid = UnicodeAttribute(null=True)
    amount_fen = NumberAttribute()
    wallet = UnicodeAttribute()  # wechat or alipay
    status = UnicodeAttribute()  # CREATED, PAID; or REFUNDING -> REFUNDED (paid, but the account was closed)
    trade_no = UnicodeAttribute(null=True)
    paid_at = NumberAttribute(null=True)
    notice_pending = UnicodeAttribute(null=True)  # "PENDING" until the template message went out
    notice_attempts = NumberAttribute(default=0)
    notice_error = UnicodeAttribute(null=True)
    notice_sent_at = NumberAttribute(null=True)
    credited_card_no = UnicodeAttribute(null=True)  # the card the credit landed on (another after 补卡)
    out_refund_no = UnicodeAttribute(null=True)  # deterministic: "RF<recharge_id>", so a retry refunds once
    refund_pending = UnicodeAttribute(null=True)  # "PENDING" until the channel accepted the refund
    refund_attempts = NumberAttribute(default=0)
    refund_error = UnicodeAttribute(null=True)
    refund_id = UnicodeAttribute(null=True)  # the platform's id of the refund
    refunded_at = NumberAttribute(null=True)
    created_at = NumberAttribute()
    pending = UnicodeAttribute(null=True)  # "CREATED" until booked (paid) or closed unpaid at the platform
    notices_pending = RechargeNoticesPending()
    refunds_pending = RechargeRefundsPending()
    recharges_unpaid = RechargesUnpaid()


class WeChatMpTokenModel(_Base):
    """The 服务号 access token of one app id, shared by every container (WeChat lets an app id hold
    one live token: each fetch retires the previous one after 5 minutes). `lease_*`: the container
    refreshing it now, so that the others use the current token or wait instead of fetching too."""

    class Meta(_Base.Meta):
        table_name = "wechat_mp_tokens"

    appid = UnicodeAttribute(hash_key=True)
    token_sealed = UnicodeAttribute(null=True)  # KMS-sealed, purpose "wechat_mp_token"
    expires_at = NumberAttribute(default=0)
    version = NumberAttribute(default=0)  # +1 per fetch: a refresh is conditioned on the version it replaces
    fetched_at = NumberAttribute(null=True)
    lease_owner = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)


CARD_MODELS: tuple[type[Model], ...] = (
    CardHolderModel,
    CardModel,
    CardBlacklistModel,
    CardBlacklistAckModel,
    CanteenRulesModel,
    CardExceptionModel,
    CardRechargeModel,
    WeChatMpTokenModel,
)
