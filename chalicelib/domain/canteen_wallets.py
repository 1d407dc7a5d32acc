"""The two wallets of a card account: which one a payment spends, what a monthly grant does,
and how long a wrong payment may be reversed. Integers only."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    subsidy_fen: int  # taken from the subsidy wallet
    cash_fen: int  # taken from the cash wallet


def split(amount_fen: int, cash_fen: int, subsidy_fen: int, order: str, overdraft: bool = False) -> Split | None:
    """How a payment is taken from the wallets, or None when they do not hold enough.

    `order` is the merchant's setting: "subsidy_first" (the usual: grants are spent before the
    holder's own money) or "cash_first". With `overdraft` (an offline record the merchant books
    anyway) what the wallets lack is taken from cash, which goes below zero.
    """
    subsidy_available, cash_available = max(subsidy_fen, 0), max(cash_fen, 0)
    if order == "cash_first":
        from_cash = min(cash_available, amount_fen)
        from_subsidy = min(subsidy_available, amount_fen - from_cash)
    else:
        from_subsidy = min(subsidy_available, amount_fen)
        from_cash = min(cash_available, amount_fen - from_subsidy)
    short = amount_fen - from_subsidy - from_cash
    if short and not overdraft:
        return None
    return Split(from_subsidy, from_cash + short)


@dataclass(frozen=True)
class Grant:
    expire_fen: int  # unspent subsidy taken back before the grant (reset policy), >= 0
    grant_fen: int


def monthly_grant(monthly_fen: int, subsidy_fen: int, policy: str) -> Grant:
    """"reset": the wallet holds exactly this month's grant afterwards; "carry": the grant adds up."""
    expire = max(subsidy_fen, 0) if policy == "reset" else 0
    return Grant(expire, monthly_fen)


def within_reversal_window(paid_at: float, now: float, window_s: int) -> bool:
    return 0 <= now - paid_at <= window_s
