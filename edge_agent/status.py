"""Online status of the terminals, reported to the cloud (``POST /edge/v1/terminals/heartbeat``).

Every ``status_report_s``, and soon after a terminal logs in or drops off (changes are coalesced
for a second), the agent sends the state of every terminal it knows::

    {"reported_at": <Unix ms>,
     "terminals": [{"terminal_id", "online", "last_seen", "offline_pending", "terminal_offline_pending"}]}

``last_seen`` is the Unix time of the last byte the terminal sent (0 when never seen since the
agent started); ``offline_pending`` counts the records the agent holds for upload,
``terminal_offline_pending`` what the terminal itself said it holds in its last HEARTBEAT. The cloud
keeps both with the time of the report, for the merchant's operators (``GET /cards/v1/terminals``):
counts that stay above zero mean payments that have not reached the cloud. A report the cloud does
not take is simply replaced by the next one.

``reported_at`` is the agent's clock when it took the snapshot, in Unix **milliseconds** (an
integer), and strictly increasing within a run (a clock stepped back still orders the reports).
The cloud stores a terminal's line only when the report is newer than the one it holds, so an HTTP
retry of an older report that lands after a newer one changes nothing (it is answered in
``stale``). A report's time must not be ahead of the cloud's clock by more than its allowed skew
(a few minutes) or the whole report is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .cloud import PATH_HEARTBEAT, CloudClient, CloudUnavailable
from .config import AgentConfig
from .server import TerminalServer
from .store import Store
from .terminals import TerminalDirectory

__all__ = ["StatusReporter"]

log = logging.getLogger(__name__)
CHANGE_DELAY_S = 1.0


class StatusReporter:
    def __init__(self, config: AgentConfig, cloud: CloudClient, server: TerminalServer,
                 terminals: TerminalDirectory, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._cloud = cloud
        self._server = server
        self._terminals = terminals
        self._store = store
        self._clock = clock
        self._changed = asyncio.Event()
        self._last_seen: dict[str, float] = {}
        self._terminal_pending: dict[str, int] = {}
        self._last_reported_ms = 0
        self.reports = 0

    def changed(self) -> None:
        self._changed.set()

    def saw(self, tid: str, at: float) -> None:
        self._last_seen[tid] = at

    def snapshot(self) -> list[dict[str, Any]]:
        online = {conn.tid: conn for conn in self._server.logged_in()}
        pending = self._store.pending_counts()
        report = []
        for tid in sorted(set(self._terminals.ids()) | set(online)):
            conn = online.get(tid)
            if conn is not None:
                self._last_seen[tid] = conn.last_seen_wall
                self._terminal_pending[tid] = conn.offline_pending
            report.append({"terminal_id": tid, "online": conn is not None,
                           "last_seen": int(self._last_seen.get(tid, 0)),
                           "offline_pending": pending.get(tid, 0),
                           "terminal_offline_pending": self._terminal_pending.get(tid, 0)})
        return report

    def report(self) -> dict[str, Any]:
        """The body of one status report: the snapshot with its time."""
        terminals = self.snapshot()
        # Never equal to or below the previous report's time, so the cloud keeps the later one.
        self._last_reported_ms = max(int(self._clock() * 1000), self._last_reported_ms + 1)
        return {"reported_at": self._last_reported_ms, "terminals": terminals}

    async def report_once(self) -> bool:
        try:
            reply = await self._cloud.post(PATH_HEARTBEAT, self.report())
        except CloudUnavailable as exc:
            log.info("status report not delivered: %s", exc)
            return False
        self.reports += 1
        if not reply.success:
            log.warning("status report refused: HTTP %s %s", reply.status, reply.code)
        return reply.success

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), self._config.status_report_s)
                await asyncio.sleep(CHANGE_DELAY_S)  # one report for a burst of logins
            except TimeoutError:
                pass
            self._changed.clear()
            await self.report_once()
