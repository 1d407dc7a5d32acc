"""Opening the terminal LOGIN keys that the cloud sends the agent (never in clear).

The cloud's ``POST /edge/v1/terminals`` answers each key as a *box*: AES-256-GCM under a key
that only the cloud and this agent can derive, because it comes from the agent's own secret::

    box_key = HKDF-SHA256(ikm = agent secret (UTF-8), salt = b"scanpay-edge-keybox-v1",
                          info = b"terminal-keys|" + agent id (UTF-8), length = 32)
    box     = base64( nonce (12 random bytes) || AES-GCM(box_key, nonce, key (UTF-8),
                                                         aad = b"<agent id>|<terminal id>") )

The associated data binds a box to its terminal: a box moved to another terminal id, or to
another agent, does not open. The agent keeps the boxes on disk exactly as received (its key cache
for cloud outages) and holds the opened keys in memory only. The cloud side is
``chalicelib/services/edge_link.py``; a known-answer vector in the tests is checked by both.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["KeyBoxError", "box_key", "open_box", "seal_box"]

SALT = b"scanpay-edge-keybox-v1"
NONCE_SIZE = 12


class KeyBoxError(ValueError):
    """A box that is malformed or does not open under this agent's secret."""


def box_key(agent_secret: str, agent_id: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT,
                info=b"terminal-keys|" + agent_id.encode("utf-8"))
    return hkdf.derive(agent_secret.encode("utf-8"))


def _aad(agent_id: str, terminal_id: str) -> bytes:
    return f"{agent_id}|{terminal_id}".encode("utf-8")


def seal_box(key: bytes, agent_id: str, terminal_id: str, plaintext: str, nonce: bytes) -> str:
    """The box of ``plaintext`` (tests and the cloud's mirror image; the agent only opens)."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError("nonce must be 12 bytes")
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _aad(agent_id, terminal_id))
    return base64.b64encode(nonce + sealed).decode("ascii")


def open_box(key: bytes, agent_id: str, terminal_id: str, box: str) -> str:
    try:
        raw = base64.b64decode(box, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyBoxError("box is not base64") from exc
    if len(raw) <= NONCE_SIZE + 16:
        raise KeyBoxError("box is too short")
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], _aad(agent_id, terminal_id))
    except InvalidTag as exc:
        raise KeyBoxError("box does not open with this agent's secret") from exc
    return plain.decode("utf-8")
