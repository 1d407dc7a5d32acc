"""HMAC-SHA256 request signing between an edge agent and the edge API. Pure functions.

The agent signs  METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n hex(SHA256(body))  with its key and sends

    X-ScanPay-Agent: <agent id>      X-ScanPay-Timestamp: <unix seconds>
    X-ScanPay-Nonce: <16+ chars>     X-ScanPay-Signature: <lowercase hex HMAC>

The API accepts a timestamp within 300 s of its clock and a nonce it has not seen in that window
(the nonce check is the store's: it needs memory). Signing the body hash means a body changed in
flight fails, and the path binds a signature to one endpoint. edge_agent/ has its own copy of
`string_to_sign` (it never imports chalicelib); a shared known-answer vector keeps the two equal.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

MAX_SKEW_S = 300
HEADER_AGENT = "x-scanpay-agent"
HEADER_TIMESTAMP = "x-scanpay-timestamp"
HEADER_NONCE = "x-scanpay-nonce"
HEADER_SIGNATURE = "x-scanpay-signature"


@dataclass(frozen=True)
class SignedRequest:
    agent_id: str
    timestamp: int
    nonce: str
    signature: str


def string_to_sign(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}".encode("utf-8")


def sign(key: str, method: str, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    return hmac.new(key.encode("utf-8"), string_to_sign(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def parse_headers(headers: dict[str, str]) -> SignedRequest | None:
    """The signature headers, or None when any is missing or malformed."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        agent_id = lowered[HEADER_AGENT]
        timestamp = int(lowered[HEADER_TIMESTAMP])
        nonce = lowered[HEADER_NONCE]
        signature = lowered[HEADER_SIGNATURE]
    except (KeyError, ValueError):
        return None
    if not (1 <= len(agent_id) <= 64 and 16 <= len(nonce) <= 64 and len(signature) == 64):
        return None
    return SignedRequest(agent_id, timestamp, nonce, signature)


def verify(key: str, request: SignedRequest, method: str, path: str, body: bytes, now: float) -> str | None:
    """None when the request is genuine and fresh, else why not (never which part of the MAC differed)."""
    if abs(now - request.timestamp) > MAX_SKEW_S:
        return "timestamp outside the allowed window"
    expected = sign(key, method, path, request.timestamp, request.nonce, body)
    if not hmac.compare_digest(expected, request.signature.lower()):
        return "bad signature"
    return None
