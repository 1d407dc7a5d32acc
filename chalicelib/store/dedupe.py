"""Idempotency records: permanent for money, windowed for request nonces."""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.condition import Condition

from chalicelib.store.models import DedupeModel


@dataclass(frozen=True)
class NonceClaim:
    """An edge request's nonce, to be claimed on its own (DedupeStore.claim) or inside the request's
    money transaction (a card payment), with the same record and the same condition either way."""

    agent_id: str
    nonce: str
    now: float
    window_s: int

    @property
    def key(self) -> str:
        return f"nonce#{self.agent_id}#{self.nonce}"

    def record(self) -> DedupeModel:
        return DedupeModel(self.key, kind="nonce", created_at=self.now, expires_at=self.now + 2 * self.window_s)

    def condition(self) -> Condition:
        """A nonce seen before may be reused only after its window has passed (no reliance on TTL deletion)."""
        return DedupeModel.dedupe_key.does_not_exist() | (DedupeModel.expires_at < self.now)


def put_if(record: DedupeModel, condition: Condition) -> bool:
    """One conditional PutItem: True when ``record`` was written, False when DynamoDB refused the
    condition (a record that must not be there was); any other failure is raised."""
    try:
        record.save(condition=condition)
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def put_new(record: DedupeModel) -> bool:
    """Put ``record`` unless its key holds a record already: True when it was put."""
    return put_if(record, DedupeModel.dedupe_key.does_not_exist())


class DedupeStore:
    def get(self, key: str) -> DedupeModel | None:
        try:
            return DedupeModel.get(key, consistent_read=True)
        except DoesNotExist:
            return None

    def claim_nonce(self, agent_id: str, nonce: str, now: float, window_s: int) -> bool:
        """True the first time a nonce is seen within its window."""
        return self.claim(NonceClaim(agent_id, nonce, now, window_s))

    def claim(self, nonce: NonceClaim) -> bool:
        """One conditional put: True when the nonce was free (or its window had passed)."""
        return put_if(nonce.record(), nonce.condition())
