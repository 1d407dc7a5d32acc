"""A transaction cancelled only by TransactionConflict is sent again; anything else is the caller's."""
from __future__ import annotations

import pytest
from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError

from chalicelib.store.transactions import is_conflict_only, retry_conflicts


def cancelled(*codes: str | None) -> TransactWriteError:
    cause = VerboseClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}},
                               "TransactWriteItems",
                               cancellation_reasons=[CancellationReason(c) if c else None for c in codes])
    return TransactWriteError("Failed to write transaction items", cause)


class Sends:
    """A fake send: raises the planned errors in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> dict:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ok": self.calls}


def test_conflicts_are_sent_again_until_the_transaction_goes_through() -> None:
    send, waits = Sends(cancelled(None, "TransactionConflict"), cancelled("TransactionConflict", None)), []
    assert retry_conflicts(send, sleep=waits.append, jitter=lambda: 1.0, base_delay_s=0.01) == {"ok": 3}
    assert send.calls == 3 and waits == [0.01, 0.02]


def test_a_failed_condition_is_not_retried_even_beside_a_conflict() -> None:
    error = cancelled("ConditionalCheckFailed", "TransactionConflict")
    send = Sends(error)
    with pytest.raises(TransactWriteError) as raised:
        retry_conflicts(send, sleep=lambda _: None)
    assert raised.value is error and send.calls == 1


def test_conflicts_give_up_after_the_last_attempt() -> None:
    send = Sends(*[cancelled("TransactionConflict") for _ in range(4)])
    with pytest.raises(TransactWriteError):
        retry_conflicts(send, attempts=3, sleep=lambda _: None)
    assert send.calls == 3


@pytest.mark.parametrize("error, conflict_only", [
    (cancelled(None, "TransactionConflict"), True),
    (cancelled("TransactionConflict", "TransactionConflict"), True),
    (cancelled("ConditionalCheckFailed"), False),
    (cancelled(None, None), False),
    (TransactWriteError("x", VerboseClientError({"Error": {"Code": "ValidationException"}}, "TransactWriteItems")),
     False),
])
def test_what_counts_as_a_pure_conflict(error: TransactWriteError, conflict_only: bool) -> None:
    assert is_conflict_only(error) is conflict_only


def test_every_store_transaction_goes_through_the_retrying_connection(settings) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.store.connection import transaction_connection
    from chalicelib.store.transactions import ConflictRetryingConnection

    assert isinstance(transaction_connection(settings), ConflictRetryingConnection)
