"""Signs edge API requests the way an edge agent does, for Chalice's test client and for HTTP."""
from __future__ import annotations

import json
import secrets

from chalicelib.domain import edge_auth


def signed_headers(agent_id: str, secret: str, method: str, path: str, body: bytes, now: float,
                   nonce: str | None = None) -> dict[str, str]:
    nonce = nonce or secrets.token_hex(12)
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        "X-ScanPay-Agent": agent_id,
        "X-ScanPay-Timestamp": str(timestamp),
        "X-ScanPay-Nonce": nonce,
        "X-ScanPay-Signature": edge_auth.sign(secret, method, path, timestamp, nonce, body),
    }


class EdgeTestClient:
    """Calls the edge API through chalice.test.Client with correct signatures."""

    def __init__(self, http, agent_id: str, secret: str, clock) -> None:  # type: ignore[no-untyped-def]
        self.http = http
        self.agent_id = agent_id
        self.secret = secret
        self.clock = clock

    def post(self, path: str, payload: dict, **overrides: object):  # type: ignore[no-untyped-def]
        body = json.dumps(payload).encode()
        headers = signed_headers(self.agent_id, self.secret, "POST", path, body, self.clock.now())
        headers.update({k: str(v) for k, v in overrides.items()})
        return self.http.post(path, headers=headers, body=body)
