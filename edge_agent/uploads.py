"""Offline records to the cloud: the background uploader and the terminals' OFFLINE_UPLOAD.

``POST /edge/v1/cards/offline`` ``{terminal_id, records: [{txn, card, amount_fen, ts, offline_id}]}``
answers ``{accepted: [...], rejected: [{txn, code}]}``; ``accepted`` may name records by txn or
by offline_id. A record the answer does not mention stays pending and goes again. Every record
is on disk with its ``offline_id`` before its first upload, and the cloud applies a repeat once,
so a crash between the cloud's answer and our update only means one more (harmless) upload.
A rejected record is kept with its code: it is reported (``python -m edge_agent --status``, the
log), never dropped.

A terminal's OFFLINE_UPLOAD is stored the same way first (one transaction for the batch), then
uploaded at once within ``offline_upload_deadline_s``; the terminal is told ``rejected`` for what
the cloud rejected, ``accepted`` for the rest: either the cloud took it or the agent now holds it
durably and will deliver it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from .background import BackgroundSender
from .cloud import PATH_CARD_OFFLINE, CloudClient, CloudUnavailable
from .config import AgentConfig
from .offline import beijing_day
from .protocol import OfflineUpload
from .store import OfflineRow, Store, insert_offline

__all__ = ["OfflineUploader"]

log = logging.getLogger(__name__)

BATCH = 50  # protocol.md's own batch size; the cloud endpoint takes the same


class OfflineUploader(BackgroundSender):
    what = "offline upload"

    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, store, cloud, clock)
        self.uploaded_batches = 0

    async def round(self) -> int:
        return await self.upload_pending()

    async def upload_pending(self) -> int:
        """Upload every pending record, by terminal in batches of 50; returns how many settled."""
        settled = 0
        while True:
            rows = self._store.pending_offline(BATCH * 4)
            if not rows:
                return settled
            by_tid: dict[str, list[OfflineRow]] = {}
            for row in rows:
                by_tid.setdefault(row.tid, []).append(row)
            progress = 0
            for tid, tid_rows in by_tid.items():
                for start in range(0, len(tid_rows), BATCH):
                    verdicts = await self.upload_batch(tid, tid_rows[start:start + BATCH])
                    progress += len(verdicts)
            settled += progress
            if progress == 0:
                return settled  # the cloud answered but settled nothing: try again later

    async def upload_batch(self, tid: str, rows: list[OfflineRow],
                           deadline_s: float | None = None) -> dict[str, str | None]:
        """Upload ``rows`` of terminal ``tid``; returns offline_id -> None (accepted) or the
        rejection code, for the records the cloud settled. Raises CloudUnavailable."""
        if not rows:
            return {}
        payload = {"terminal_id": tid, "records": [row.upload_item() for row in rows]}
        reply = await self._cloud.post(PATH_CARD_OFFLINE, payload, deadline_s=deadline_s)
        if reply.status == 401:
            raise CloudUnavailable(f"{PATH_CARD_OFFLINE}: HTTP 401 {reply.body}")
        if not reply.success:
            # The cloud refused the batch as a whole (say the terminal was removed): every record
            # is kept as rejected with that code, for a person to look at.
            verdicts: dict[str, str | None] = {row.offline_id: reply.code for row in rows}
        else:
            verdicts = _verdicts(rows, reply.body)
        rejected = {oid: code for oid, code in verdicts.items() if code is not None}
        accepted = [oid for oid, code in verdicts.items() if code is None]
        await self._store.settle_offline(accepted, rejected, self._clock())
        self.uploaded_batches += 1
        for row in rows:
            if row.offline_id in rejected:
                log.warning("offline record %s/%s (%s fen, card %s) rejected by the cloud: %s",
                            row.tid, row.txn, row.amount_fen, row.card, rejected[row.offline_id])
        return verdicts

    # -- OFFLINE_UPLOAD from a terminal ------------------------------------------------------

    async def accept_from_terminal(self, tid: str, upload: OfflineUpload) -> dict[str, Any]:
        now = self._clock()
        day = beijing_day(now)
        accepted: list[int] = []
        rejected: list[dict[str, Any]] = []
        records = []
        seen = set()
        for record in upload.records:
            if record.txn in seen:
                continue
            seen.add(record.txn)
            if record.amount_fen <= 0:
                rejected.append({"txn": record.txn, "code": "ERR009"})
            else:
                records.append(record)

        def store_all(c: Any) -> list[OfflineRow]:
            return [insert_offline(c, uuid.uuid4().hex, tid, r.txn, r.card, r.amount_fen, r.ts,
                                   beijing_day(r.ts) if r.ts > 0 else day, "terminal", now)
                    for r in records]

        rows = await self._store.write(store_all)
        pending = [row for row in rows if row.state == "pending"]
        verdicts: dict[str, str | None] = {}
        try:
            verdicts = await self.upload_batch(tid, pending, self._config.offline_upload_deadline_s)
        except CloudUnavailable as exc:
            log.info("terminal %s offline batch kept for later upload: %s", tid, exc)
            self.wake()
        for row in rows:
            code = verdicts.get(row.offline_id) if row.offline_id in verdicts else row.code
            if row.state == "rejected" or code is not None:
                rejected.append({"txn": row.txn, "code": code or "ERR011"})
            else:
                accepted.append(row.txn)
        return {"accepted": accepted, "rejected": rejected}


def _verdicts(rows: list[OfflineRow], body: dict[str, Any]) -> dict[str, str | None]:
    by_txn = {row.txn: row.offline_id for row in rows}
    ids = {row.offline_id for row in rows}
    verdicts: dict[str, str | None] = {}

    def offline_id_of(ref: object) -> str | None:
        if isinstance(ref, str):
            return ref if ref in ids else None
        if isinstance(ref, int) and not isinstance(ref, bool):
            return by_txn.get(ref)
        return None

    for item in _list(body.get("accepted")):
        oid = offline_id_of(item)
        if oid is not None:
            verdicts[oid] = None
    for item in _list(body.get("rejected")):
        if not isinstance(item, dict):
            continue
        oid = offline_id_of(item.get("txn")) or offline_id_of(item.get("offline_id"))
        code = item.get("code")
        if oid is not None:
            verdicts[oid] = code if isinstance(code, str) and code else "REJECTED"
    return verdicts


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
