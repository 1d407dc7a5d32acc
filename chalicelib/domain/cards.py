"""IC-card accounts: card states, the result codes of protocol.md and what the terminal shows.

A card item carries the live account of its holder (wallets and limit counters); replacing a card
moves the account to the new card, so `account_id` (the ledger account "card#<account_id>") stays
while card numbers change.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from chalicelib.domain.money import format_yuan


class CardStatus(str, Enum):
    ACTIVE = "active"
    LOST = "lost"  # 挂失: the account stays on the card until it is found (unlost) or replaced
    CANCELLED = "cancelled"  # 注销: the account is closed
    REPLACED = "replaced"  # 补卡: the account moved to another card


LIVE_STATUSES = (CardStatus.ACTIVE, CardStatus.LOST)  # cards that hold an account's money
BLACKLISTED = (CardStatus.LOST, CardStatus.CANCELLED, CardStatus.REPLACED)


class Wallet(str, Enum):
    CASH = "cash"  # what the holder paid in: refundable
    SUBSIDY = "subsidy"  # what the employer or school granted: never paid out


OK = "OK"
# protocol.md result codes: (screen text, spoken text)
RESULT_TEXT: dict[str, tuple[str, str]] = {
    "ERR001": ("非法卡", "非法卡"),
    "ERR002": ("注销卡", "此卡已注销"),
    "ERR003": ("机号限制", "此卡不能在本机消费"),
    "ERR004": ("限次", "超过消费次数"),
    "ERR005": ("限额", "超过消费限额"),
    "ERR006": ("不在消费时段", "不在消费时段"),
    "ERR007": ("余额不足", "余额不足"),
    "ERR008": ("挂失卡", "此卡已挂失"),
    "ERR009": ("金额错误", "金额错误"),
    "ERR010": ("单笔限额", "超过单笔限额"),
    "ERR011": ("设置错误", "设置错误"),
    "ERR012": ("网络故障", "网络故障"),
}


def status_refusal(status: CardStatus) -> str | None:
    """The result code for a card that may not pay, or None for an active card."""
    return {
        CardStatus.ACTIVE: None,
        CardStatus.LOST: "ERR008",
        CardStatus.CANCELLED: "ERR002",
        CardStatus.REPLACED: "ERR001",  # an old card after 补卡 is not a card of this merchant any more
    }[status]


@dataclass(frozen=True)
class CardState:
    """What one read of a card item tells a payment: who, which state, the wallets, the counters."""

    merchant_id: str
    card_no: str
    account_id: str
    holder_id: str
    class_code: str
    status: CardStatus
    cash_fen: int
    subsidy_fen: int
    day: str | None = None  # Beijing date of the counters below
    day_fen: int = 0
    day_count: int = 0
    meal: str | None = None  # "<date>#<meal code>" of the meal counters
    meal_fen: int = 0
    meal_count: int = 0
    subsidy_month: str | None = None  # "YYYY-MM" of the last monthly grant

    @property
    def balance_fen(self) -> int:
        return self.cash_fen + self.subsidy_fen


def refusal_answer(code: str, balance_fen: int | None) -> dict:
    msg, voice = RESULT_TEXT[code]
    return {"ok": False, "code": code, "msg": msg, "voice": voice, "balance_fen": balance_fen}


def paid_answer(charged_fen: int, balance_fen: int) -> dict:
    """The answer a booked payment returns (and returns again to every repeat)."""
    return {
        "ok": True, "code": OK, "msg": "扣款成功", "voice": f"扣款{format_yuan(charged_fen)}元",
        "balance_fen": balance_fen, "charged_fen": charged_fen,
    }
