"""Each terminal's PARAMS, fetched from the cloud, kept in SQLite, pushed to the terminal.

``POST /edge/v1/cards/params`` ``{terminal_id}`` answers the terminal's settings with their
``ver`` (mode, fixed amount, meal periods, limits, and ``offline``: the offline limits). The
answer is stored whole (kv ``params:<tid>``), so that after a restart with the cloud away the
LOGIN and HEARTBEAT answers still carry the right ``params_ver`` and offline decisions still use
the terminal's own limits.

Fetched at start, every ``params_poll_s``, and after a LOGIN when the last fetch of that terminal
is older than that. A version that moved is pushed (PARAMS, body = the stored answer) to the
terminal's live link; the whole PARAMS also goes after each LOGIN, since the LOGIN does not say
which version the terminal holds. The session resends an unacknowledged push every 3 s and takes
only an ack that echoes the pushed ``ver``. Version 0 is the cloud's "no rules yet": not pushed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .cloud import PATH_PARAMS, CloudClient, CloudUnavailable
from .config import AgentConfig, OfflineLimits
from .protocol import Command
from .server import TerminalConnection
from .store import Store

__all__ = ["ParamsSync", "limits_from_params"]

log = logging.getLogger(__name__)
KV_PREFIX = "params:"
# The cloud's names of the offline limits -> ours. A limit the cloud leaves out (the per-card daily
# count when the merchant did not set one) keeps the fallback (the terminal list's or the config's).
_OFFLINE_NAMES = {"per_payment_max_fen": "max_payment_fen", "per_card_day_max_fen": "max_card_day_fen",
                  "per_card_day_max_count": "max_card_day_count", "max_count": "max_terminal_pending"}


def limits_from_params(params: dict[str, Any] | None, fallback: OfflineLimits) -> OfflineLimits:
    """The offline limits of a PARAMS answer; ``fallback`` for each one it lacks or gets wrong."""
    offline = (params or {}).get("offline")
    if not isinstance(offline, dict):
        return fallback
    changes = {ours: offline[theirs] for theirs, ours in _OFFLINE_NAMES.items()
               if _is_count(offline.get(theirs))}
    return replace(fallback, **changes)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class ParamsSync:
    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient,
                 terminal_ids: Callable[[], list[str]],
                 connection_of: Callable[[str], TerminalConnection | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._store = store
        self._cloud = cloud
        self._terminal_ids = terminal_ids
        self._connection_of = connection_of
        self._clock = clock
        self._fetched_at: dict[str, float] = {}
        self._cache: dict[str, dict[str, Any] | None] = {}  # what the store holds, read once
        self._lock = asyncio.Lock()

    # -- what is stored ----------------------------------------------------------------------

    def params_of(self, tid: str) -> dict[str, Any] | None:
        if tid not in self._cache:
            raw = self._store.get_kv(KV_PREFIX + tid)
            self._cache[tid] = json.loads(raw) if raw else None
        return self._cache[tid]

    def version_of(self, tid: str) -> int | None:
        """The stored version, None when nothing is stored for ``tid`` yet."""
        params = self.params_of(tid)
        return None if params is None else int(params["ver"])

    def limits_for(self, tid: str, fallback: OfflineLimits) -> OfflineLimits:
        return limits_from_params(self.params_of(tid), fallback)

    # -- fetching ----------------------------------------------------------------------------

    async def fetch(self, tid: str) -> bool:
        """Fetch and keep ``tid``'s params; push them when their version moved. True on a change.

        Raises :class:`CloudUnavailable` without a definite answer; a refusal (say, a terminal
        the cloud no longer knows) is logged and leaves the stored params as they are."""
        self._fetched_at[tid] = self._clock()
        reply = await self._cloud.post(PATH_PARAMS, {"terminal_id": tid})
        params = {name: value for name, value in reply.body.items() if name != "ok"}
        if not reply.success or not _is_count(params.get("ver")):
            log.warning("params of %s not taken: HTTP %s %s", tid, reply.status, reply.code)
            return False
        async with self._lock:  # the poll and a LOGIN's fetch may meet: one push per change
            return await self._keep(tid, params)

    async def _keep(self, tid: str, params: dict[str, Any]) -> bool:
        old = self.params_of(tid)
        if old == params:
            return False
        await self._store.set_kv(KV_PREFIX + tid, json.dumps(params, ensure_ascii=False))
        self._cache[tid] = params
        if old is None or old.get("ver") != params["ver"]:
            log.info("params of %s now at version %s", tid, params["ver"])
            conn = self._connection_of(tid)
            if conn is not None:
                self._push(conn, params)
        return True

    async def refresh(self, tid: str) -> None:
        """:meth:`fetch` for a background task: an absent cloud is logged, not raised."""
        try:
            await self.fetch(tid)
        except CloudUnavailable as exc:
            log.info("params not refreshed: %s", exc)

    async def sync_all(self) -> int:
        """Fetch every terminal's params; returns how many terminals there were."""
        tids = self._terminal_ids()
        for tid in tids:
            try:
                await self.fetch(tid)
            except CloudUnavailable as exc:
                log.info("params not refreshed: %s", exc)
                break  # the cloud is away: the others would fail the same way
        return len(tids)

    async def run(self) -> None:
        while True:
            known = 1
            try:
                known = await self.sync_all()
            except Exception:  # noqa: BLE001 - keep the stored params and try again later
                log.exception("params refresh failed")
            # No terminal list yet (first start, cloud away): look again soon, not in a minute.
            await asyncio.sleep(self._config.params_poll_s if known else min(1.0, self._config.params_poll_s))

    # -- terminals ---------------------------------------------------------------------------

    def after_login(self, conn: TerminalConnection) -> bool:
        """Push the stored params to a terminal that just logged in; True when they are stale
        (never fetched by this process, or longer ago than ``params_poll_s``)."""
        tid = conn.tid
        assert tid is not None
        params = self.params_of(tid)
        if params is not None:
            self._push(conn, params)
        fetched = self._fetched_at.get(tid)
        return fetched is None or self._clock() - fetched >= self._config.params_poll_s

    def _push(self, conn: TerminalConnection, params: dict[str, Any]) -> None:
        if params["ver"]:
            conn.push(Command.PARAMS, params)
