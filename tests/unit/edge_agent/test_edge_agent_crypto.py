"""Known-answer vectors of the agent's two crypto rules, each also computed by the cloud's copy.

Independent references: the signature with
``printf 'POST\n/edge/v1/orders/qr\n1795000000\n<nonce>\n<sha256 of body>' | openssl dgst -sha256 -hmac demo-edge-secret``
and the box key with ``openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt key:demo-edge-secret
-kdfopt salt:scanpay-edge-keybox-v1 -kdfopt 'info:terminal-keys|E-DEMO' HKDF``.
"""

from __future__ import annotations

import base64

import pytest

from chalicelib.domain import edge_auth
from chalicelib.services.edge_link import keybox_key, seal_terminal_key
from edge_agent.keybox import KeyBoxError, box_key, open_box, seal_box
from edge_agent.signing import sign, signed_headers, string_to_sign

SECRET, AGENT = "demo-edge-secret", "E-DEMO"
PATH, TS, NONCE = "/edge/v1/orders/qr", 1795000000, "0123456789abcdef01234567"
BODY = b'{"terminal_id":"T0001","txn":42,"amount_fen":1250}'
SIGNATURE = "e1ffa9ceef545a25c0e8fa5c00678618c4014414b7e00e0d8908baffc354447c"
BOX_KEY = "278db055ee10dae7f94c06cf0cd1bd4074402b6a5b56935f1eba3b9e9c4c51d4"
BOX = "AAECAwQFBgcICQoLb4YaNhvqByK17ZDbWuiNjAx3tQjIo6yOYkQTe69W"  # demo-key-T0001, nonce 00..0b


def test_signature_known_answer_matches_the_cloud() -> None:
    assert sign(SECRET, "POST", PATH, TS, NONCE, BODY) == SIGNATURE
    assert edge_auth.sign(SECRET, "POST", PATH, TS, NONCE, BODY) == SIGNATURE
    assert string_to_sign("post", PATH, TS, NONCE, BODY) == edge_auth.string_to_sign("POST", PATH, TS, NONCE, BODY)


def test_signed_headers_pass_the_clouds_verification() -> None:
    headers = signed_headers(AGENT, SECRET, "POST", PATH, BODY, TS + 0.9)
    parsed = edge_auth.parse_headers(headers)
    assert parsed is not None and parsed.agent_id == AGENT and parsed.timestamp == TS
    assert edge_auth.verify(SECRET, parsed, "POST", PATH, BODY, TS) is None
    assert edge_auth.verify(SECRET, parsed, "POST", PATH, BODY + b" ", TS) == "bad signature"
    # a fresh nonce each time: the cloud refuses a nonce it has seen
    assert signed_headers(AGENT, SECRET, "POST", PATH, BODY, TS)["X-ScanPay-Nonce"] != headers["X-ScanPay-Nonce"]


def test_box_known_answer_matches_the_cloud() -> None:
    key = box_key(SECRET, AGENT)
    assert key.hex() == BOX_KEY == keybox_key(SECRET, AGENT).hex()
    nonce = bytes(range(12))
    assert seal_box(key, AGENT, "T0001", "demo-key-T0001", nonce) == BOX
    assert seal_terminal_key(key, AGENT, "T0001", "demo-key-T0001", nonce) == BOX
    assert open_box(key, AGENT, "T0001", BOX) == "demo-key-T0001"


@pytest.mark.parametrize(("secret", "agent", "terminal"), [
    ("another-secret", AGENT, "T0001"),  # another agent's secret
    (SECRET, "E-OTHER", "T0001"),  # the box moved to another agent
    (SECRET, AGENT, "T0002"),  # the box moved to another terminal
])
def test_box_opens_only_for_its_agent_and_terminal(secret: str, agent: str, terminal: str) -> None:
    with pytest.raises(KeyBoxError):
        open_box(box_key(secret, agent), agent, terminal, BOX)


@pytest.mark.parametrize("box", ["", "not base64!", base64.b64encode(b"short").decode(),
                                 BOX[:-4] + ("AAAA" if not BOX.endswith("AAAA") else "BBBB")])
def test_malformed_or_tampered_box_is_refused(box: str) -> None:
    with pytest.raises(KeyBoxError):
        open_box(box_key(SECRET, AGENT), AGENT, "T0001", box)
