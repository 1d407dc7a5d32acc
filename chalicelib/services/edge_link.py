"""The terminal link's needs from the cloud: the agent's terminals with their LOGIN keys, and the
terminals' online status that the agent reports.

Status reports can arrive out of order (an HTTP retry of an older report landing after a newer
one). Each report carries ``reported_at``, the agent's clock when it took the report, in Unix
**milliseconds** (an integer), and a terminal's status is stored only when the report is newer
than the stored one (store/terminals.py, one conditional write); the others are answered in
``stale``. A report without ``reported_at`` (an agent older than this rule) is ordered by the
cloud's clock when it arrives, in milliseconds. A ``reported_at`` that is not an integer, below
MIN_REPORTED_AT_MS (seconds sent for milliseconds) or further ahead of our clock than
MAX_FUTURE_SKEW_S is refused (400) and nothing is written. ``reported_at`` only orders: operators
see the cloud's clock when the report was stored (``status_reported_at``, whole seconds).

LOGIN keys are secrets: they leave the cloud only inside a *box* that only the requesting agent
opens, AES-256-GCM under a key both sides derive from the agent's own secret (which the cloud
holds sealed with KMS, and the agent in its config):

    box_key = HKDF-SHA256(ikm = agent secret (UTF-8), salt = b"scanpay-edge-keybox-v1",
                          info = b"terminal-keys|" + agent id (UTF-8), length = 32)
    box     = base64(nonce (12 random bytes) || AES-GCM(box_key, nonce, key (UTF-8),
                                                       aad = b"<agent id>|<terminal id>"))

The associated data binds a box to one agent and one terminal id. A TLS proxy, a log of the
response or the agent's own disk cache never holds a key in clear. edge_agent/keybox.py opens
these boxes (the agent never imports chalicelib, nor the cloud edge_agent: each side has its own
copy of this rule, and a shared known-answer vector in the tests keeps the two equal).
"""
from __future__ import annotations

import base64
import os
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import InvalidRequest
from chalicelib.store.directory import Directory, EdgeAgentInfo
from chalicelib.store.terminals import LinkReport, LinkWrite, TerminalLinkStore

KEYBOX_SALT = b"scanpay-edge-keybox-v1"
MAX_REPORTED_TERMINALS = 1000
MAX_FUTURE_SKEW_S = 300  # a last_seen further ahead of our clock is a broken agent clock
MAX_PENDING = 10_000_000  # far above what an agent's disk holds: a larger count is a broken report
MIN_REPORTED_AT_MS = 10**12  # 2001-09-09 in ms; a smaller reported_at is seconds sent as milliseconds


def keybox_key(agent_secret: str, agent_id: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=KEYBOX_SALT,
                info=b"terminal-keys|" + agent_id.encode("utf-8"))
    return hkdf.derive(agent_secret.encode("utf-8"))


def seal_terminal_key(box_key: bytes, agent_id: str, terminal_id: str, key: str, nonce: bytes) -> str:
    sealed = AESGCM(box_key).encrypt(nonce, key.encode("utf-8"), f"{agent_id}|{terminal_id}".encode("utf-8"))
    return base64.b64encode(nonce + sealed).decode("ascii")


class EdgeLinkService:
    def __init__(self, directory: Directory, link_store: TerminalLinkStore, clock: Clock,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._directory = directory
        self._link_store = link_store
        self._clock = clock
        self._random_bytes = random_bytes

    def terminal_list(self, agent: EdgeAgentInfo) -> dict[str, Any]:
        """The agent's active terminals, each LOGIN key in its box (one GSI query, no Scan)."""
        box_key = keybox_key(agent.secret, agent.agent_id)
        keys = self._directory.terminal_keys(agent.agent_id)
        merchant = self._directory.merchant(agent.merchant_id)
        terminals = [{"terminal_id": terminal_id,
                      "key_box": seal_terminal_key(box_key, agent.agent_id, terminal_id, key, self._random_bytes(12))}
                     for terminal_id, key in sorted(keys.items())]
        return {"merchant_name": merchant.name if merchant else "", "params_ver": 0, "terminals": terminals}

    def record_heartbeat(self, agent: EdgeAgentInfo, reports: object, reported_at: object = None) -> dict[str, Any]:
        """Store each reported terminal's status when the report is newer than the stored one.
        Everything is checked before anything is written, so a malformed report changes nothing;
        terminals that are not the agent's are `skipped`, those with a newer stored report `stale`."""
        now_s = self._clock.now()
        now = int(now_s)
        report_ms = _checked_reported_at(reported_at, now_s)
        checked = _checked_reports(reports, now)
        updated, skipped, stale = 0, [], []
        for report in checked:
            written = self._link_store.record_link_status(agent.agent_id, report, report_ms, now)
            if written is LinkWrite.STORED:
                updated += 1
            elif written is LinkWrite.STALE:
                stale.append(report.terminal_id)
            else:
                skipped.append(report.terminal_id)
        return {"updated": updated, "skipped": skipped, "stale": stale, "server_time": now}


def _checked_reported_at(reported_at: object, now_s: float) -> int:
    """The report's time in Unix ms; the cloud's arrival time for an agent that does not send it."""
    if reported_at is None:
        return int(now_s * 1000)
    latest_ms = int((now_s + MAX_FUTURE_SKEW_S) * 1000)
    if (isinstance(reported_at, bool) or not isinstance(reported_at, int)
            or not MIN_REPORTED_AT_MS <= reported_at <= latest_ms):
        raise InvalidRequest("reported_at must be Unix milliseconds (an integer), not in the future")
    return reported_at


def _checked_reports(reports: object, now: int) -> list[LinkReport]:
    if not isinstance(reports, list) or len(reports) > MAX_REPORTED_TERMINALS:
        raise InvalidRequest(f"terminals must be a list of at most {MAX_REPORTED_TERMINALS} items")
    checked = []
    for item in reports:
        if not isinstance(item, dict):
            raise InvalidRequest("each terminal report is an object")
        terminal_id, online, last_seen = item.get("terminal_id"), item.get("online"), item.get("last_seen")
        if not isinstance(terminal_id, str) or not 1 <= len(terminal_id) <= 64:
            raise InvalidRequest("terminal_id must be a string of 1 to 64 characters")
        if not isinstance(online, bool):
            raise InvalidRequest("online must be true or false")
        if isinstance(last_seen, bool) or not isinstance(last_seen, int) or not 0 <= last_seen <= now + MAX_FUTURE_SKEW_S:
            raise InvalidRequest("last_seen must be Unix seconds, not in the future")
        # The agent's names: offline_pending is what the agent holds of the terminal's records,
        # terminal_offline_pending what the terminal said it holds (protocol.md HEARTBEAT).
        checked.append(LinkReport(terminal_id, online, last_seen,
                                  _pending(item, "terminal_offline_pending"), _pending(item, "offline_pending")))
    return checked


def _pending(item: dict, name: str) -> int | None:
    """A count of records, absent (None) when an older agent does not send it."""
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PENDING:
        raise InvalidRequest(f"{name} must be a count of records, 0 to {MAX_PENDING}")
    return value
