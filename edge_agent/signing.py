"""HMAC-SHA256 signatures of the agent's requests to the cloud's edge API.

The edge agent never imports chalicelib, so this is its own copy of the cloud's
``chalicelib.domain.edge_auth`` rule; a known-answer vector in the tests is computed by both.
The agent signs::

    METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n lowercase hex SHA-256 of the raw body

with its secret and sends ``X-ScanPay-Agent``, ``X-ScanPay-Timestamp`` (Unix seconds),
``X-ScanPay-Nonce`` (24 hex characters, fresh for every attempt: the cloud refuses a nonce it has
seen) and ``X-ScanPay-Signature`` (lowercase hex).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["sign", "signed_headers", "string_to_sign"]


def string_to_sign(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}".encode("utf-8")


def sign(key: str, method: str, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    message = string_to_sign(method, path, timestamp, nonce, body)
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(
    agent_id: str, key: str, method: str, path: str, body: bytes, now: float, nonce: str | None = None
) -> dict[str, str]:
    nonce = nonce or secrets.token_hex(12)
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        "X-ScanPay-Agent": agent_id,
        "X-ScanPay-Timestamp": str(timestamp),
        "X-ScanPay-Nonce": nonce,
        "X-ScanPay-Signature": sign(key, method, path, timestamp, nonce, body),
    }
