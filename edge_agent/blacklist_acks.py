"""Blacklist acks reported to the cloud, so that the console can show which terminal is behind.

A terminal's ack of a BLACKLIST push of version V is written to the store first (per terminal,
the newest version only), then reported with ``POST /edge/v1/cards/blacklist/ack``
``{terminal_id, version}``. The report is idempotent (it says "holds V"), so it is retried until
the cloud answers: at once after each ack, and every ``ack_report_s`` while some are unreported,
also after a restart. A definite refusal (4xx) is logged and not retried: asking again would get
the same answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from .cloud import PATH_BLACKLIST_ACK, CloudClient, CloudUnavailable
from .config import AgentConfig
from .store import Store

__all__ = ["BlacklistAckReporter"]

log = logging.getLogger(__name__)


class BlacklistAckReporter:
    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient) -> None:
        self._config = config
        self._store = store
        self._cloud = cloud
        self._wake = asyncio.Event()
        self.taken = 0  # acks handed over by the link (counted at once, for tests)
        self.reported = 0

    def take(self, tid: str, version: int) -> Callable[[], Coroutine[Any, Any, None]]:
        """Terminal ``tid`` acknowledged blacklist ``version``: the write that keeps it (for a
        background task), after which it is reported soon."""
        self.taken += 1
        return lambda: self._keep(tid, version)

    async def _keep(self, tid: str, version: int) -> None:
        await self._store.note_blacklist_ack(tid, version)
        self._wake.set()

    async def report_once(self) -> bool:
        """Report every unreported ack; False when the cloud was away (the rest wait)."""
        for tid, version in self._store.unreported_blacklist_acks():
            try:
                reply = await self._cloud.post(PATH_BLACKLIST_ACK, {"terminal_id": tid, "version": version})
            except CloudUnavailable as exc:
                log.info("blacklist acks not reported: %s", exc)
                return False
            if not reply.success:
                log.error("the cloud refused the blacklist ack of %s (version %s): HTTP %s %s",
                          tid, version, reply.status, reply.code)
            else:
                self.reported += 1
            await self._store.blacklist_ack_reported(tid, version)
        return True

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.report_once()
            except Exception:  # noqa: BLE001 - the acks stay on disk; try again later
                log.exception("reporting blacklist acks failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self._config.ack_report_s)
            except TimeoutError:
                pass
