"""PynamoDB models of IC-card accounts. CARD_MODELS is part of store/models.py ALL_MODELS, so they are
bound, created and templated with every other table (store/connection.py, infra/).

Access patterns:
- card payment: CardModel by "<merchant_id>#<card_no>" (the item holds the account's wallets and
  limit counters, so one read and one conditional write decide and book a payment);
- an account's live card: CardModel.by_account; a merchant's cards: CardModel.by_merchant (subsidy job);
- blacklist: CardBlacklistModel per merchant, version 0 is the head holding `latest`;
- edge acks: CardBlacklistAckModel per (merchant, terminal);
- rules and the operator token: CanteenRulesModel per merchant;
- offline records kept for the merchant: CardExceptionModel per (merchant, "<terminal>#<txn>");
- online recharge: CardRechargeModel per recharge id; notices still to send in the sparse
  `notices_pending` index; holders by WeChat openid in CardHolderModel.by_openid.
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


class CanteenRulesModel(_Base):
    class Meta(_Base.Meta):
        table_name = "canteen_rules"

    merchant_id = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(default=0)  # the PARAMS version terminals see
    rules = JSONAttribute(default=dict)  # domain/canteen_rules.py rules_from_dict
    operator_token_sha256 = UnicodeAttribute(null=True)  # interim operator auth (api/cards.py)
    template = JSONAttribute(default=dict)  # 充值成功通知: template_id and field mapping
    updated_at = NumberAttribute()


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
    status = UnicodeAttribute()  # CREATED, PAID
    trade_no = UnicodeAttribute(null=True)
    paid_at = NumberAttribute(null=True)
    notice_pending = UnicodeAttribute(null=True)  # "PENDING" until the template message went out
    notice_attempts = NumberAttribute(default=0)
    notice_error = UnicodeAttribute(null=True)
    notice_sent_at = NumberAttribute(null=True)
    created_at = NumberAttribute()
    notices_pending = RechargeNoticesPending()


CARD_MODELS: tuple[type[Model], ...] = (
    CardHolderModel,
    CardModel,
    CardBlacklistModel,
    CardBlacklistAckModel,
    CanteenRulesModel,
    CardExceptionModel,
    CardRechargeModel,
)
