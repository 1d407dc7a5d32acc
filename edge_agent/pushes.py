"""PAY_RESULT pushes: from the cloud's event feed to the terminals, until each is acknowledged.

The feed (``POST /edge/v1/events`` ``{after: cursor}``) lists orders of this agent's terminals
that were paid or closed, and repeats its last 10 s on purpose. Each poll's new events and the new
cursor are written in one transaction; the event id is the table's key, so a repeat is dropped
there and a crash between the two can neither lose an event nor push one twice as new.

Delivery: a pending push goes to its terminal's live link at once, and again after every new
LOGIN of that terminal; the session resends an unacknowledged one every 3 s while the link
lives. The acknowledgement marks it done on disk. At most ``MAX_PER_LINK`` pushes of one link are
unacknowledged at a time; the rest follow as acks arrive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .background import backoff_wait
from .cloud import PATH_EVENTS, CloudClient, CloudUnavailable
from .config import AgentConfig
from .protocol import Command
from .server import TerminalConnection, TerminalServer
from .store import PushRow, Store

__all__ = ["PushCenter", "event_to_push"]

log = logging.getLogger(__name__)

KV_CURSOR = "events_cursor"
MAX_PER_LINK = 32
_STATUSES = ("PAID", "CLOSED", "FAILED")
_CHANNELS = ("wechat", "alipay", "card")
# protocol.md names no channel for an order that closed before any wallet opened it; the field
# is required, so such a CLOSED push says "wechat" (its msg and voice name no wallet).
FALLBACK_CHANNEL = "wechat"


def event_to_push(event: dict[str, Any]) -> PushRow | None:
    """The PAY_RESULT of one feed event, or None when the event is not usable."""
    event_id, tid, txn = event.get("event_id"), event.get("terminal_id"), event.get("txn")
    status, amount, order_id = event.get("status"), event.get("amount_fen"), event.get("order_id")
    if not (isinstance(event_id, str) and event_id and isinstance(tid, str) and isinstance(order_id, str)):
        return None
    if not _is_int(txn) or not _is_int(amount) or status not in _STATUSES:
        return None
    channel = event.get("channel") if event.get("channel") in _CHANNELS else FALLBACK_CHANNEL
    msg = event.get("msg") if isinstance(event.get("msg"), str) else ("支付成功" if status == "PAID" else "订单已关闭")
    voice = event.get("voice") if isinstance(event.get("voice"), str) else ""
    body = {"txn": txn, "order_id": order_id, "status": status, "amount_fen": amount, "channel": channel,
            "msg": msg, "voice": voice}
    return PushRow(event_id, tid, body)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class PushCenter:
    def __init__(self, config: AgentConfig, store: Store, cloud: CloudClient, server: TerminalServer,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._store = store
        self._cloud = cloud
        self._server = server
        self._clock = clock
        self.polls = 0

    # -- the feed ----------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                more = await self.poll_once()
            except CloudUnavailable as exc:
                failures = min(failures + 1, 10)
                log.info("event feed unavailable: %s", exc)
                more = False
            except Exception:  # noqa: BLE001 - the poller must outlive a bad answer
                failures = min(failures + 1, 10)
                log.exception("event poll failed")
                more = False
            else:
                failures = 0
            if more:
                continue
            await asyncio.sleep(backoff_wait(self._config.events_poll_s, self._config.failure_backoff_max_s, failures))

    async def poll_once(self) -> bool:
        """One page of the feed; True when the cloud says more is waiting."""
        cursor = self._store.get_kv(KV_CURSOR) or ""
        reply = await self._cloud.post(PATH_EVENTS, {"after": cursor, "limit": 100})
        self.polls += 1
        if not reply.success:
            raise CloudUnavailable(f"{PATH_EVENTS}: HTTP {reply.status} {reply.code}")
        events = reply.body.get("events")
        new_cursor = reply.body.get("cursor")
        if not isinstance(events, list) or not isinstance(new_cursor, str):
            raise CloudUnavailable(f"{PATH_EVENTS}: malformed answer")
        pushes = []
        for event in events:
            push = event_to_push(event) if isinstance(event, dict) else None
            if push is None:
                log.warning("unusable event skipped: %r", event)
            else:
                pushes.append(push)
        fresh = await self._store.add_pushes(pushes, KV_CURSOR, new_cursor or cursor, self._clock())
        for push in fresh:
            conn = self._server.connection_of(push.tid)
            if conn is not None:
                self._send(conn, push)
        return bool(reply.body.get("more")) and bool(events)

    # -- delivery ----------------------------------------------------------------------------

    def after_login(self, conn: TerminalConnection) -> None:
        """The terminal logged in anew: everything it has not acknowledged goes again."""
        self._fill(conn)

    def on_ack(self, conn: TerminalConnection, seq: int) -> None:
        event_id = conn.push_tags.get(seq)
        if event_id is None:
            return
        task = asyncio.get_running_loop().create_task(self._acked(conn, seq, event_id))
        task.add_done_callback(_log_failure)

    async def _acked(self, conn: TerminalConnection, seq: int, event_id: str) -> None:
        # The tag stays until the ack is on disk, so that _fill does not push it again meanwhile.
        try:
            await self._store.ack_push(event_id, self._clock())
        finally:
            conn.push_tags.pop(seq, None)
        self._fill(conn)

    def _fill(self, conn: TerminalConnection) -> None:
        tid = conn.tid
        if tid is None or conn.closed:
            return
        in_flight = set(conn.push_tags.values())
        room = MAX_PER_LINK - len(in_flight)
        if room <= 0:
            return
        for push in self._store.pending_pushes(tid, MAX_PER_LINK):
            if room <= 0:
                break
            if push.event_id not in in_flight:
                self._send(conn, push)
                room -= 1

    def _send(self, conn: TerminalConnection, push: PushRow) -> None:
        if push.event_id in conn.push_tags.values() or len(conn.push_tags) >= MAX_PER_LINK:
            return  # already on this link, or it is full: after_login/_fill bring it later
        conn.push(Command.PAY_RESULT, push.body, tag=push.event_id)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("recording a push ack failed", exc_info=task.exception())
