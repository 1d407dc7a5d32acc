"""The offline decision for a card payment the cloud did not answer in time. Pure rules.

The order of the checks is the order of the terminal's screen messages: a bad amount first
(ERR009), then a blacklisted card (ERR008: a card on the blacklist is never accepted offline),
then the terminal's offline limits: per payment, per card per Beijing day (amount and count,
counting every offline record of that card, whichever terminal took it), and the number of the
terminal's records still waiting for upload. The limits are the terminal's PARAMS from the cloud
(:mod:`.params`), each one the cloud leaves out falling back to the config's. Any limit refused is
ERR012 (service unavailable and offline payment not allowed), protocol.md's code for exactly this case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .config import OfflineLimits

__all__ = ["BEIJING", "Decision", "beijing_day", "decide_offline", "yuan"]

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China: a fixed offset is exact


@dataclass(frozen=True)
class Decision:
    accepted: bool
    code: str  # "OK" or the refusal code
    reason: str


def beijing_day(unix_seconds: float) -> str:
    """The business day (Asia/Shanghai date) of a Unix time, as YYYY-MM-DD."""
    return datetime.fromtimestamp(unix_seconds, BEIJING).date().isoformat()


def yuan(amount_fen: int) -> str:
    """12.50 for 1250 fen: integer arithmetic, no float near money."""
    sign = "-" if amount_fen < 0 else ""
    whole, cents = divmod(abs(amount_fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def decide_offline(
    amount_fen: int,
    blacklisted: bool,
    limits: OfflineLimits,
    card_day_count: int,
    card_day_fen: int,
    terminal_pending: int,
) -> Decision:
    if amount_fen <= 0:
        return Decision(False, "ERR009", "amount must be greater than zero")
    if blacklisted:
        return Decision(False, "ERR008", "card is on the blacklist")
    if amount_fen > limits.max_payment_fen:
        return Decision(False, "ERR012", "over the offline per-payment limit")
    if card_day_fen + amount_fen > limits.max_card_day_fen:
        return Decision(False, "ERR012", "over the offline per-card daily amount")
    if card_day_count + 1 > limits.max_card_day_count:
        return Decision(False, "ERR012", "over the offline per-card daily count")
    if terminal_pending + 1 > limits.max_terminal_pending:
        return Decision(False, "ERR012", "too many offline records waiting for upload")
    return Decision(True, "OK", "accepted offline")
