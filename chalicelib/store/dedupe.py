"""Idempotency records: permanent for money, windowed for request nonces."""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.store.models import DedupeModel


class DedupeStore:
    def get(self, key: str) -> DedupeModel | None:
        try:
            return DedupeModel.get(key, consistent_read=True)
        except DoesNotExist:
            return None

    def claim_nonce(self, agent_id: str, nonce: str, now: float, window_s: int) -> bool:
        """True the first time a nonce is seen within its window. One conditional put: a nonce seen
        before may be reused only after its window has passed (no reliance on TTL deletion)."""
        record = DedupeModel(f"nonce#{agent_id}#{nonce}", kind="nonce", created_at=now, expires_at=now + 2 * window_s)
        try:
            record.save(condition=DedupeModel.dedupe_key.does_not_exist() | (DedupeModel.expires_at < now))
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True
