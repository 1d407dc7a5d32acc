"""The "voided" claim of a (terminal, txn) that no card payment was booked for.

One conditional PutItem of the txn's permanent dedupe record (the same `txn#<terminal>#<txn>` key a
card payment writes in its own transaction), so whichever lands first wins: after the claim, the
original payment request, however late, finds this record and books nothing
(services/cards.py answers a voided txn with the answer stored here).
"""
from __future__ import annotations

from chalicelib.store.dedupe import put_new
from chalicelib.store.models import DedupeModel

VOIDED_KIND = "card_voided"


class CardVoidStore:
    def claim_voided(self, dedupe_key: str, answer: dict, request_hash: str, now: float) -> bool:
        """True when the record was put; False when the key holds a record already (a payment
        booked meanwhile, or an earlier void): read it and decide again."""
        record = DedupeModel(dedupe_key, kind=VOIDED_KIND, ref="", answer=answer, request_hash=request_hash,
                             created_at=now)
        return put_new(record)
