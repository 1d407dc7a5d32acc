"""Transactions that DynamoDB cancelled only because another transaction held one of their items.

Every money transaction also ADDs to a merchant-day's settlement totals item (one of a few shards,
store/settlement_totals.py), so two payments of one busy merchant can touch the same item at the same
moment. DynamoDB then cancels one of them with reason `TransactionConflict`: nothing of it was
written, and sending the very same request again is safe (its conditions are checked again; a
condition that now fails is reported as usual). botocore does not retry this, so without this
module a lunch-hour collision would surface as an error to the terminal or the platform.

Only a cancellation whose reasons are all `TransactionConflict` (or none, for the other items) is
retried: a `ConditionalCheckFailed` among them means the world changed, and the caller decides.
The local emulator never reports conflicts (it serialises requests); the unit tests drive the retry
with a fake send.
"""
from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError

__all__ = ["ConflictRetryingConnection", "is_conflict_only", "retry_conflicts"]

log = logging.getLogger(__name__)
T = TypeVar("T")

ATTEMPTS = 6  # 5 retries: with 4+ shards per merchant-day a repeat collision is rare
BASE_DELAY_S = 0.005  # full jitter, doubling: 5, 10, 20, 40, 80 ms at most


def is_conflict_only(error: TransactWriteError) -> bool:
    if error.cause_response_code != "TransactionCanceledException":
        return False
    codes = {reason.code for reason in error.cancellation_reasons if reason is not None}
    return codes == {"TransactionConflict"}


def retry_conflicts(send: Callable[[], T], *, attempts: int = ATTEMPTS, base_delay_s: float = BASE_DELAY_S,
                    sleep: Callable[[float], Any] = time.sleep, jitter: Callable[[], float] = random.random) -> T:
    """send(), sent again after a pure TransactionConflict, at most `attempts` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except TransactWriteError as error:
            if attempt == attempts or not is_conflict_only(error):
                raise
            log.info("transaction conflict, attempt %d of %d: sending again", attempt, attempts)
            sleep(base_delay_s * 2 ** (attempt - 1) * jitter())
    raise AssertionError("not reached")  # the loop returns or raises


class ConflictRetryingConnection(Connection):
    """The connection every store transaction goes through (store/connection.py)."""

    def transact_write_items(self, *args: Any, **kwargs: Any) -> dict:
        return retry_conflicts(lambda: super(ConflictRetryingConnection, self).transact_write_items(*args, **kwargs))
