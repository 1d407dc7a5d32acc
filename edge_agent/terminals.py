"""The agent's terminals and their LOGIN keys, as the cloud last sent them; LOGIN checks.

The list comes from ``POST /edge/v1/terminals``; its JSON is kept in SQLite exactly as received
(keys still in their boxes, see :mod:`edge_agent.keybox`), so that after a restart with the cloud
away, terminals still log in. Opened keys live in memory only.

A LOGIN is refused (``AUTH_FAILED``) when the terminal is unknown, its ``ts`` is more than
``login_skew_s`` from the agent's clock, its MAC is wrong, or its nonce was already used by that
terminal within the window. A nonce is remembered only after a correct MAC, so nobody without the
key can fill the memory; each is forgotten after twice the window.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cloud import PATH_TERMINALS, CloudClient, CloudUnavailable
from .config import AgentConfig, OfflineLimits
from .keybox import KeyBoxError, box_key, open_box
from .protocol import Login, verify_login_mac
from .params import ParamsSync
from .store import Store

__all__ = ["Terminal", "TerminalDirectory"]

log = logging.getLogger(__name__)
KV_TERMINALS = "terminals"


@dataclass(frozen=True)
class Terminal:
    terminal_id: str
    key: str
    offline_limits: OfflineLimits


class TerminalDirectory:
    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._store = store
        self._cloud = cloud
        self._clock = clock
        self._box_key = box_key(config.agent_secret, config.agent_id)
        self._terminals: dict[str, Terminal] = {}
        self._nonces: dict[str, dict[str, float]] = {}
        self.merchant_name = ""
        self.params_ver = 0
        self.loaded_from_cloud = False
        self._last_unknown_refresh = float("-inf")
        self._params: ParamsSync | None = None

    def use_params(self, params: ParamsSync) -> None:
        """Offline limits come from each terminal's PARAMS when the cloud sent them."""
        self._params = params

    # -- the list ----------------------------------------------------------------------------

    def load_cached(self) -> bool:
        """Use the list kept on disk (True when there was one)."""
        raw = self._store.get_kv(KV_TERMINALS)
        if raw is None:
            return False
        try:
            self._apply(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("the cached terminal list is unusable: %s", exc)
            return False
        return True

    async def refresh(self) -> bool:
        """Fetch the list from the cloud; keep and use it. False when the cloud is away."""
        try:
            reply = await self._cloud.post(PATH_TERMINALS, {})
        except CloudUnavailable as exc:
            log.warning("terminal list not refreshed: %s", exc)
            return False
        if not reply.success:
            log.error("the cloud refused the terminal list: HTTP %s %s", reply.status, reply.code)
            return False
        try:
            self._apply(reply.body)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("the cloud's terminal list is unusable: %s", exc)
            return False
        await self._store.set_kv(KV_TERMINALS, json.dumps(reply.body, ensure_ascii=False))
        self.loaded_from_cloud = True
        return True

    def should_refresh_for_unknown(self, now: float) -> bool:
        """A LOGIN from an unknown tid may be a terminal added since: refresh, at most this often."""
        if now - self._last_unknown_refresh < self._config.unknown_terminal_refresh_s:
            return False
        self._last_unknown_refresh = now
        return True

    def _apply(self, body: dict[str, Any]) -> None:
        terminals = {}
        for item in body["terminals"]:
            tid = item["terminal_id"]
            try:
                key = open_box(self._box_key, self._config.agent_id, tid, item["key_box"])
            except KeyBoxError as exc:
                log.error("key of terminal %s does not open: %s", tid, exc)
                continue
            limits = item.get("offline_limits")
            terminals[tid] = Terminal(
                tid, key, OfflineLimits.from_dict(limits) if limits else self._config.offline_limits
            )
        self._terminals = terminals
        self.merchant_name = str(body.get("merchant_name") or "")
        self.params_ver = int(body.get("params_ver") or 0)

    # -- lookups -----------------------------------------------------------------------------

    def get(self, tid: str) -> Terminal | None:
        return self._terminals.get(tid)

    def ids(self) -> list[str]:
        return sorted(self._terminals)

    def limits_for(self, tid: str) -> OfflineLimits:
        """The PARAMS' limits, else the terminal list's, else the config's (per limit)."""
        terminal = self._terminals.get(tid)
        fallback = terminal.offline_limits if terminal else self._config.offline_limits
        return fallback if self._params is None else self._params.limits_for(tid, fallback)

    # -- LOGIN -------------------------------------------------------------------------------

    def check_login(self, login: Login, now: float) -> str | None:
        """None when the LOGIN is good (its nonce is then used up), else why not (for the log)."""
        terminal = self._terminals.get(login.tid)
        if terminal is None:
            return "unknown terminal"
        if abs(now - login.ts) > self._config.login_skew_s:
            return "ts outside the allowed window"
        if not verify_login_mac(terminal.key, login.tid, login.ts, login.nonce, login.mac):
            return "wrong mac"
        seen = self._nonces.setdefault(login.tid, {})
        horizon = now - 2 * self._config.login_skew_s
        for nonce in [n for n, at in seen.items() if at < horizon]:
            del seen[nonce]
        if login.nonce in seen:
            return "nonce already used"
        seen[login.nonce] = now
        return None
