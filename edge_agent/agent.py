"""The edge agent: builds its parts once and answers the terminal link (the server's ``LinkApp``).

Parts, each in its own module: the durable :class:`~edge_agent.store.Store`, the signed
:class:`~edge_agent.cloud.CloudClient`, the :class:`~edge_agent.terminals.TerminalDirectory`
(keys for LOGIN), the :class:`~edge_agent.server.TerminalServer`, and the request handlers
(:mod:`.payments`, :mod:`.orders`, :mod:`.uploads`) behind one :class:`~edge_agent.once.ExactlyOnce`.
Background loops: key refresh, the event feed (:mod:`.pushes`), the offline uploader, the
status report, the blacklist, each terminal's PARAMS (:mod:`.params`), the blacklist acks
reported to the cloud (:mod:`.blacklist_acks`) and the voids of uncertain refusals (:mod:`.voids`).

Start order matters for a restart with the cloud away: the terminal list kept on disk is loaded
before the server listens, so terminals log in at once; the cloud is asked in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .blacklist import BlacklistSync
from .blacklist_acks import BlacklistAckReporter
from .cloud import CloudClient
from .config import AgentConfig
from .once import ExactlyOnce
from .orders import OrderForwarder
from .params import ParamsSync
from .payments import CardPayments
from .protocol import (
    CardPay,
    Command,
    Heartbeat,
    Login,
    OfflineUpload,
    PushAck,
    QrCancel,
    QrCreate,
    Query,
    RequestEvent,
    ScanPay,
)
from .pushes import PushCenter
from .server import TerminalConnection, TerminalServer
from .status import StatusReporter
from .store import Store
from .terminals import TerminalDirectory
from .uploads import OfflineUploader
from .voids import UncertainResolver

__all__ = ["EdgeAgent"]

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
KEEP_ACKED_PUSHES_S = 7 * 86400.0


class EdgeAgent:
    def __init__(self, config: AgentConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stopped = asyncio.Event()  # set once stop() is through

    async def start(self) -> "EdgeAgent":
        config, clock = self.config, self.clock
        self.store = Store.open(config.db_path)
        self.cloud = CloudClient(config, clock=clock)
        self.terminals = TerminalDirectory(config, self.store, self.cloud, clock)
        if not self.terminals.load_cached():
            log.info("no terminal list on disk yet: terminals log in once the cloud has been reached")
        self.once = ExactlyOnce(self.store, clock)
        self.uploader = OfflineUploader(config, self.store, self.cloud, clock)
        self.voids = UncertainResolver(config, self.store, self.cloud, clock)
        self.payments = CardPayments(config, self.store, self.cloud, self.once, self.terminals,
                                     self.uploader.wake, clock)
        self.orders = OrderForwarder(config, self.cloud, self.once)
        self.server = TerminalServer(config, self, clock=clock)
        self.blacklist = BlacklistSync(config, self.store, self.cloud, self.server.logged_in)
        self.blacklist_acks = BlacklistAckReporter(config, self.store, self.cloud)
        self.params = ParamsSync(config, self.store, self.cloud, self.terminals.ids, self.server.connection_of)
        self.terminals.use_params(self.params)
        self.pushes = PushCenter(config, self.store, self.cloud, self.server, clock)
        self.status = StatusReporter(config, self.cloud, self.server, self.terminals, self.store, clock)
        await self.server.start()
        for name, loop in (("keys", self._refresh_keys_forever), ("events", self.pushes.run),
                           ("uploads", self.uploader.run), ("status", self.status.run),
                           ("blacklist", self.blacklist.run), ("prune", self._prune_forever),
                           ("params", self.params.run), ("blacklist-acks", self.blacklist_acks.run),
                           ("voids", self.voids.run)):
            self._spawn(name, loop)
        return self

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        """Stop accepting, close the links, let requests in progress finish, then close the store."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        await self.server.stop()
        await _cancel_all(list(self._tasks))
        await self.cloud.aclose()
        self.store.close()
        self._stopped.set()

    async def run_until_stopped(self) -> None:
        await self._stopped.wait()

    def request_stop(self) -> None:
        """For a signal handler: stop in the background (run_until_stopped returns when done)."""
        if not self._stopping:
            self._stop_task = asyncio.get_running_loop().create_task(self.stop())

    # -- LinkApp -----------------------------------------------------------------------------

    def _versions(self, tid: str) -> dict[str, int]:
        params_ver = self.params.version_of(tid)
        if params_ver is None:  # not fetched yet: the terminal list's version
            params_ver = self.terminals.params_ver
        return {"params_ver": params_ver, "blacklist_ver": self.blacklist.version}

    def on_login(self, conn: TerminalConnection, request: Login) -> None:
        now = self.clock()
        problem = self.terminals.check_login(request, now)
        if problem is not None:
            log.warning("LOGIN of %r from %s refused: %s", request.tid, conn.peer, problem)
            if problem == "unknown terminal" and self.terminals.should_refresh_for_unknown(now):
                self._spawn("keys-now", self.terminals.refresh)
            conn.refuse_login(request)
            return
        conn.accept_login(request, {"ok": True, "server_time": int(now),
                                    "merchant_name": self.terminals.merchant_name, **self._versions(request.tid)})
        self.server.bind_tid(conn, request.tid)
        self.status.changed()
        self._time_check(conn, request.ts, now)
        self.blacklist.after_login(conn)
        self.pushes.after_login(conn)
        if self.params.after_login(conn):
            self._spawn("params-now", lambda: self.params.refresh(request.tid))

    def on_heartbeat(self, conn: TerminalConnection, request: Heartbeat) -> dict[str, Any]:
        now = self.clock()
        self._time_check(conn, request.ts, now)
        assert conn.tid is not None  # the session lets HEARTBEAT through only after LOGIN
        return {"server_time": int(now), **self._versions(conn.tid)}

    def _time_check(self, conn: TerminalConnection, terminal_ts: int, now: float) -> None:
        if abs(terminal_ts - now) > self.config.time_set_drift_s:
            conn.push(Command.TIME_SET, {"server_time": int(now)})

    async def handle(self, conn: TerminalConnection, request: RequestEvent) -> dict[str, Any]:
        tid = conn.tid
        assert tid is not None  # the session lets requests through only after LOGIN
        if isinstance(request, CardPay):
            return await self.payments.pay(tid, request)
        if isinstance(request, QrCreate):
            return await self.orders.create_qr(tid, request)
        if isinstance(request, ScanPay):
            return await self.orders.scan_pay(tid, request)
        if isinstance(request, Query):
            return await self.orders.query(tid, request)
        if isinstance(request, QrCancel):
            return await self.orders.cancel(tid, request)
        if isinstance(request, OfflineUpload):
            return await self.uploader.accept_from_terminal(tid, request)
        raise TypeError(f"no handler for {type(request).__name__}")

    def on_push_ack(self, conn: TerminalConnection, ack: PushAck) -> None:
        if ack.push_cmd == Command.PAY_RESULT:
            self.pushes.on_ack(conn, ack.seq)
        elif ack.push_cmd == Command.BLACKLIST and conn.tid is not None:
            tid, version = conn.tid, int(ack.push_body["ver"])  # the session checked the echo
            # A long list goes in several pushes of one version: the terminal holds it once all are acked.
            if not any(p.cmd == Command.BLACKLIST and p.body.get("ver") == version
                       for p in conn.session.unacked_pushes()):
                self._spawn("blacklist-ack", self.blacklist_acks.take(tid, version))

    def on_closed(self, conn: TerminalConnection) -> None:
        if conn.tid is not None:
            self.status.saw(conn.tid, conn.last_seen_wall)
            self.status.changed()

    # -- background --------------------------------------------------------------------------

    def _spawn(self, name: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(name, factory), name=f"edge-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, name: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a dead loop is logged loudly; the link keeps serving
            log.exception("background task %s stopped", name)

    async def _refresh_keys_forever(self) -> None:
        while True:
            ok = await self.terminals.refresh()
            await asyncio.sleep(self.config.keys_refresh_s if ok else min(5.0, self.config.keys_refresh_s))

    async def _prune_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.store.prune(self.clock() - KEEP_ACKED_PUSHES_S)
            await asyncio.sleep(PRUNE_EVERY_S)


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again those that are still running.

    Again, because a task may swallow one cancellation (seen when the agent's HTTP client was httpx:
    a cancel arriving while it closed a connection inside anyio's shielded scope was lost, and the
    loop went on as if nothing happened). Kept with the lean client (edge_agent/http1.py): a single cancel() that is lost
    would leave stop() waiting forever.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.5)
