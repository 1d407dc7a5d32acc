"""The agent's durable state: one SQLite file in WAL mode with ``synchronous=FULL``.

What it holds and why it must survive a crash:

- ``answers``: the first answer given for each (tid, txn) of CARD_PAY, QR_CREATE and SCAN_PAY, so
  that a repeat, also after a restart, gets the same answer and nothing is charged twice.
- ``offline_records``: card payments decided offline by the agent and the terminals' own
  OFFLINE_UPLOAD records, each with its ``offline_id`` (the upload's idempotency id), written
  before the terminal hears "OK" and kept after upload with the cloud's verdict (a rejected record
  is kept with its code, never dropped).
- ``pushes``: PAY_RESULT pushes from the cloud's event feed until the terminal acknowledges them,
  keyed by the event id (which is also the dedupe of the feed's repeats).
- ``uncertain``: card payments refused offline after an online attempt that may have landed.
- ``uncertain_outcomes``: how the cloud settled each of those (:mod:`.voids`): "reversed" (it had
  booked the payment and gave the money back), "never booked" (it had not, and never will), or
  "refused" with the cloud's reason, for a person to look at.
- ``kv``: the event cursor, the blacklist version, the cloud's terminal list (keys still boxed).
- ``blacklist``: cards never accepted offline.
- ``blacklist_acks``: per terminal, the newest blacklist version it acknowledged and the newest
  one reported to the cloud (only the newest matters: an ack says "I hold this version").

Writes go through one thread that commits in groups: every write queued while the previous commit
was syncing is applied in the next transaction (each in its own savepoint, so one failing write
does not undo the others), and its future resolves only after that COMMIT returned. One fsync then
covers many terminals' payments, which is what makes ``synchronous=FULL`` affordable. Reads run on
the event loop's own connection (WAL readers never wait for the writer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["OfflineRow", "PushRow", "Store", "StoredAnswer", "StoreClosed"]

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    tid TEXT NOT NULL, txn INTEGER NOT NULL, cmd INTEGER NOT NULL, digest TEXT NOT NULL,
    body TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (tid, txn)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offline_records (
    id INTEGER PRIMARY KEY,
    offline_id TEXT NOT NULL UNIQUE,
    tid TEXT NOT NULL, txn INTEGER NOT NULL, card TEXT NOT NULL, amount_fen INTEGER NOT NULL,
    ts INTEGER NOT NULL, day TEXT NOT NULL,
    source TEXT NOT NULL,                  -- 'agent' (decided here) or 'terminal' (OFFLINE_UPLOAD)
    state TEXT NOT NULL DEFAULT 'pending', -- pending, accepted, rejected
    code TEXT, created_at REAL NOT NULL, settled_at REAL,
    UNIQUE (tid, txn)
);
CREATE INDEX IF NOT EXISTS offline_pending ON offline_records (id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS offline_card_day ON offline_records (card, day);
CREATE INDEX IF NOT EXISTS offline_tid_pending ON offline_records (tid) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS pushes (
    event_id TEXT PRIMARY KEY, tid TEXT NOT NULL, body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', created_at REAL NOT NULL, acked_at REAL
);
CREATE INDEX IF NOT EXISTS pushes_pending ON pushes (tid, created_at) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS uncertain (
    tid TEXT NOT NULL, txn INTEGER NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (tid, txn)
);
CREATE TABLE IF NOT EXISTS uncertain_outcomes (
    tid TEXT NOT NULL, txn INTEGER NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL,
    resolved_at REAL NOT NULL, PRIMARY KEY (tid, txn)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blacklist (card TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blacklist_acks (
    tid TEXT PRIMARY KEY, version INTEGER NOT NULL, reported INTEGER NOT NULL DEFAULT -1
) WITHOUT ROWID;
"""

MAX_BATCH = 512  # writes per group commit: bounds one transaction's time


class StoreClosed(RuntimeError):
    """A write was asked of a store that is closed (or whose writer died)."""


@dataclass(frozen=True)
class StoredAnswer:
    cmd: int
    digest: str
    body: dict[str, Any]


@dataclass(frozen=True)
class OfflineRow:
    id: int
    offline_id: str
    tid: str
    txn: int
    card: str
    amount_fen: int
    ts: int
    state: str
    code: str | None

    def upload_item(self) -> dict[str, Any]:
        return {"txn": self.txn, "card": self.card, "amount_fen": self.amount_fen, "ts": self.ts,
                "offline_id": self.offline_id}


@dataclass(frozen=True)
class PushRow:
    event_id: str
    tid: str
    body: dict[str, Any]


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # a COMMIT that returned is on disk
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class _Writer(threading.Thread):
    """Applies queued writes in group commits; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(name="edge-store-writer", daemon=True)
        self._conn = conn
        self._jobs: queue.SimpleQueue[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self.commits = 0
        self.failed: BaseException | None = None

    def submit(self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any]) -> None:
        self._jobs.put((fn, future))

    def stop(self) -> None:
        self._jobs.put(None)

    def run(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._apply(batch)
        self._conn.close()

    def _apply(self, batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]]) -> None:
        conn = self._conn
        alone = len(batch) == 1  # a lone write needs no savepoint to undo only itself
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, _future in batch:
                outcomes.append(_run_one(conn, fn, savepoint=not alone))
            if alone and not outcomes[0][0]:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
                self.commits += 1
        except Exception as exc:  # noqa: BLE001 - the whole group failed: nobody may think it stored
            log.exception("group commit failed")
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            outcomes = [(False, exc)] * len(batch)
        _resolve(batch, outcomes)


def _run_one(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any], savepoint: bool) -> tuple[bool, Any]:
    """One write of a group; in its own savepoint, so that its failure undoes only itself."""
    if savepoint:
        conn.execute("SAVEPOINT job")
    try:
        result = fn(conn)
    except Exception as exc:  # noqa: BLE001 - handed to the caller's future
        if savepoint:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
        return False, exc
    if savepoint:
        conn.execute("RELEASE job")
    return True, result


def _resolve(batch: list[tuple[Any, asyncio.Future[Any]]], outcomes: list[tuple[bool, Any]]) -> None:
    # One wake-up of the event loop per group, not per write.
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for (_fn, future), (ok, value) in zip(batch, outcomes):
        by_loop.setdefault(future.get_loop(), []).append((future, ok, value))

    def settle(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
        for future, ok, value in items:
            if future.done():
                continue  # the caller was cancelled; the write stands
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(settle, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


class Store:
    """Durable state of one agent. Create with :meth:`open`; reads are synchronous and cheap,
    writes are awaited and durable when they return."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        writer_conn = connect(path)
        writer_conn.executescript(SCHEMA)
        self._reader = connect(path)
        self._writer = _Writer(writer_conn)
        self._writer.start()
        self._closed = False

    @classmethod
    def open(cls, path: str | Path) -> "Store":
        return cls(Path(path))

    @property
    def commits(self) -> int:
        return self._writer.commits

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.stop()
        self._writer.join(timeout=10)
        self._reader.close()

    # -- generic -----------------------------------------------------------------------------

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the writer's transaction; returns once its group is committed."""
        if self._closed or not self._writer.is_alive():
            raise StoreClosed("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writer.submit(fn, future)
        # No asyncio.shield (an extra future and two callbacks per write): a caller cancelled while
        # waiting cancels this future only; the writer still applies the write and, finding the
        # future done, leaves it alone (see _resolve). The write stands either way.
        return await future

    def _one(self, sql: str, args: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        return self._reader.execute(sql, tuple(args)).fetchone()

    # -- key/value ---------------------------------------------------------------------------

    def get_kv(self, key: str) -> str | None:
        row = self._one("SELECT value FROM kv WHERE key = ?", (key,))
        return row[0] if row else None

    async def set_kv(self, key: str, value: str) -> None:
        await self.write(lambda c: set_kv(c, key, value))

    # -- answers -----------------------------------------------------------------------------

    def get_answer(self, tid: str, txn: int) -> StoredAnswer | None:
        row = self._one("SELECT cmd, digest, body FROM answers WHERE tid = ? AND txn = ?", (tid, txn))
        return StoredAnswer(row[0], row[1], json.loads(row[2])) if row else None

    def highest_answered_txn(self, tid: str) -> int:
        """The highest txn of ``tid`` with a stored answer (-1: none)."""
        row = self._one("SELECT MAX(txn) FROM answers WHERE tid = ?", (tid,))
        return -1 if row is None or row[0] is None else int(row[0])

    async def put_answer(self, tid: str, txn: int, cmd: int, digest: str, body: dict[str, Any],
                         now: float) -> StoredAnswer:
        """Store the first answer of (tid, txn); returns the one that is stored (the first)."""
        return await self.write(lambda c: put_answer(c, tid, txn, cmd, digest, body, now))

    # -- offline records ---------------------------------------------------------------------

    def pending_offline(self, limit: int) -> list[OfflineRow]:
        rows = self._reader.execute(
            f"SELECT {_OFFLINE_COLUMNS} FROM offline_records WHERE state = 'pending' ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [OfflineRow(*row) for row in rows]

    def offline_counts(self) -> dict[str, int]:
        rows = self._reader.execute("SELECT state, COUNT(*) FROM offline_records GROUP BY state").fetchall()
        return {state: count for state, count in rows}

    def offline_rows(self, state: str | None = None) -> list[OfflineRow]:
        sql = f"SELECT {_OFFLINE_COLUMNS} FROM offline_records"
        args: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state,)
        return [OfflineRow(*row) for row in self._reader.execute(sql + " ORDER BY id", args)]

    def pending_counts(self) -> dict[str, int]:
        """Offline records waiting for upload, by terminal."""
        rows = self._reader.execute(
            "SELECT tid, COUNT(*) FROM offline_records WHERE state = 'pending' GROUP BY tid").fetchall()
        return {tid: int(count) for tid, count in rows}

    async def settle_offline(self, accepted: list[str], rejected: dict[str, str], now: float) -> None:
        """Record the cloud's verdict on uploaded records (by offline_id)."""

        def apply(c: sqlite3.Connection) -> None:
            c.executemany(
                "UPDATE offline_records SET state = 'accepted', code = NULL, settled_at = ? "
                "WHERE offline_id = ? AND state = 'pending'",
                [(now, offline_id) for offline_id in accepted],
            )
            c.executemany(
                "UPDATE offline_records SET state = 'rejected', code = ?, settled_at = ? "
                "WHERE offline_id = ? AND state = 'pending'",
                [(code, now, offline_id) for offline_id, code in rejected.items()],
            )

        await self.write(apply)

    # -- pushes ------------------------------------------------------------------------------

    def pending_pushes(self, tid: str, limit: int) -> list[PushRow]:
        rows = self._reader.execute(
            "SELECT event_id, tid, body FROM pushes WHERE tid = ? AND state = 'pending' "
            "ORDER BY created_at, event_id LIMIT ?",
            (tid, limit),
        ).fetchall()
        return [PushRow(event_id, row_tid, json.loads(body)) for event_id, row_tid, body in rows]

    def push_state(self, event_id: str) -> str | None:
        row = self._one("SELECT state FROM pushes WHERE event_id = ?", (event_id,))
        return row[0] if row else None

    async def add_pushes(self, pushes: list[PushRow], cursor_key: str, cursor: str, now: float) -> list[PushRow]:
        """Insert the pushes not seen before and move the cursor, in one transaction; returns the
        new ones (a repeat of the feed's overlap window is dropped here, by event id)."""

        def apply(c: sqlite3.Connection) -> list[PushRow]:
            fresh = []
            for push in pushes:
                inserted = c.execute(
                    "INSERT OR IGNORE INTO pushes (event_id, tid, body, created_at) VALUES (?, ?, ?, ?)",
                    (push.event_id, push.tid, _dumps(push.body), now),
                ).rowcount
                if inserted:
                    fresh.append(push)
            set_kv(c, cursor_key, cursor)
            return fresh

        return await self.write(apply)

    async def ack_push(self, event_id: str, now: float) -> None:
        await self.write(lambda c: c.execute(
            "UPDATE pushes SET state = 'acked', acked_at = ? WHERE event_id = ? AND state = 'pending'",
            (now, event_id)))

    async def prune(self, older_than: float) -> None:
        """Forget pushes older than ``older_than``: acknowledged ones, and pending ones whose
        PAY_RESULT nobody took (a week-old order's result is of no use on a screen).

        Answers and offline records are kept: they are the exactly-once memory and the audit trail.
        """
        await self.write(lambda c: c.execute(
            "DELETE FROM pushes WHERE (state = 'acked' AND acked_at < ?) OR (state = 'pending' AND created_at < ?)",
            (older_than, older_than)))

    # -- blacklist ---------------------------------------------------------------------------

    def blacklist_cards(self) -> list[str]:
        return [card for (card,) in self._reader.execute("SELECT card FROM blacklist ORDER BY card")]

    def is_blacklisted(self, card: str) -> bool:
        return self._one("SELECT 1 FROM blacklist WHERE card = ?", (card,)) is not None

    async def apply_blacklist(self, version: int, full: bool, add: list[str], remove: list[str]) -> None:
        def apply(c: sqlite3.Connection) -> None:
            if full:
                c.execute("DELETE FROM blacklist")
            c.executemany("INSERT OR IGNORE INTO blacklist (card) VALUES (?)", [(card,) for card in add])
            c.executemany("DELETE FROM blacklist WHERE card = ?", [(card,) for card in remove])
            set_kv(c, "blacklist_version", str(version))

        await self.write(apply)

    # -- blacklist acks ----------------------------------------------------------------------

    async def note_blacklist_ack(self, tid: str, version: int) -> None:
        """Terminal ``tid`` holds blacklist ``version`` (an older ack arriving late changes nothing)."""
        await self.write(lambda c: c.execute(
            "INSERT INTO blacklist_acks (tid, version) VALUES (?, ?) "
            "ON CONFLICT (tid) DO UPDATE SET version = MAX(version, excluded.version)", (tid, version)))

    def unreported_blacklist_acks(self) -> list[tuple[str, int]]:
        return list(self._reader.execute(
            "SELECT tid, version FROM blacklist_acks WHERE reported < version ORDER BY tid"))

    async def blacklist_ack_reported(self, tid: str, version: int) -> None:
        await self.write(lambda c: c.execute(
            "UPDATE blacklist_acks SET reported = MAX(reported, ?) WHERE tid = ?", (version, tid)))

    # -- uncertain ---------------------------------------------------------------------------

    def uncertain_rows(self) -> list[tuple[str, int, str]]:
        return list(self._reader.execute("SELECT tid, txn, reason FROM uncertain ORDER BY created_at"))

    def unresolved_uncertain(self, limit: int) -> list[tuple[str, int]]:
        """(tid, txn) of the uncertain refusals the cloud has not settled yet, oldest first."""
        return list(self._reader.execute(
            "SELECT u.tid, u.txn FROM uncertain u LEFT JOIN uncertain_outcomes o ON o.tid = u.tid AND o.txn = u.txn "
            "WHERE o.tid IS NULL ORDER BY u.created_at LIMIT ?", (limit,)))

    async def resolve_uncertain(self, tid: str, txn: int, outcome: str, detail: str, now: float) -> None:
        """Keep how the cloud settled an uncertain refusal; the first outcome stays."""
        await self.write(lambda c: c.execute(
            "INSERT OR IGNORE INTO uncertain_outcomes (tid, txn, outcome, detail, resolved_at) VALUES (?, ?, ?, ?, ?)",
            (tid, txn, outcome, detail, now)))

    def uncertain_outcomes(self) -> list[tuple[str, int, str, str | None, str | None]]:
        """Every uncertain refusal: (tid, txn, reason, outcome or None while unsettled, detail)."""
        return list(self._reader.execute(
            "SELECT u.tid, u.txn, u.reason, o.outcome, o.detail FROM uncertain u "
            "LEFT JOIN uncertain_outcomes o ON o.tid = u.tid AND o.txn = u.txn ORDER BY u.created_at"))


_OFFLINE_COLUMNS = "id, offline_id, tid, txn, card, amount_fen, ts, state, code"


# One encoder, built once: json.dumps with options builds a new one on every call.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# Functions below run inside the writer's transaction (they take its connection).


def set_kv(c: sqlite3.Connection, key: str, value: str) -> None:
    c.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
              (key, value))


def get_answer(c: sqlite3.Connection, tid: str, txn: int) -> StoredAnswer | None:
    row = c.execute("SELECT cmd, digest, body FROM answers WHERE tid = ? AND txn = ?", (tid, txn)).fetchone()
    return StoredAnswer(row[0], row[1], json.loads(row[2])) if row else None


def put_answer(c: sqlite3.Connection, tid: str, txn: int, cmd: int, digest: str, body: dict[str, Any],
               now: float) -> StoredAnswer:
    """Store the first answer of (tid, txn); returns the one that is stored (the first)."""
    return put_answers(c, [(tid, txn, cmd, digest, body)], now)[0]


def put_answers(c: sqlite3.Connection, answers: list[tuple[str, int, int, str, dict[str, Any]]],
                now: float) -> list[StoredAnswer]:
    """:func:`put_answer` for each (tid, txn, cmd, digest, body) in one statement (a batch of card
    payments' answers); returns the stored answer of each, in order (the first one stays)."""
    inserted = c.executemany(
        "INSERT OR IGNORE INTO answers (tid, txn, cmd, digest, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(tid, txn, cmd, digest, _dumps(body), now) for tid, txn, cmd, digest, body in answers],
    ).rowcount
    if inserted == len(answers):
        return [StoredAnswer(cmd, digest, body) for _tid, _txn, cmd, digest, body in answers]
    stored = [get_answer(c, tid, txn) for tid, txn, _cmd, _digest, _body in answers]  # some were there already
    assert all(answer is not None for answer in stored)
    return stored  # type: ignore[return-value]


def card_day_usage(c: sqlite3.Connection, card: str, day: str) -> tuple[int, int]:
    """(count, amount_fen) of the offline payments of ``card`` on ``day``, every source."""
    count, total = c.execute(
        "SELECT COUNT(*), COALESCE(SUM(amount_fen), 0) FROM offline_records WHERE card = ? AND day = ?",
        (card, day),
    ).fetchone()
    return int(count), int(total)


def terminal_pending(c: sqlite3.Connection, tid: str) -> int:
    return int(c.execute("SELECT COUNT(*) FROM offline_records WHERE tid = ? AND state = 'pending'",
                         (tid,)).fetchone()[0])


def blacklisted(c: sqlite3.Connection, card: str) -> bool:
    return c.execute("SELECT 1 FROM blacklist WHERE card = ?", (card,)).fetchone() is not None


def insert_offline(c: sqlite3.Connection, offline_id: str, tid: str, txn: int, card: str, amount_fen: int,
                   ts: int, day: str, source: str, now: float) -> OfflineRow:
    """Insert a record unless (tid, txn) is stored already; returns the stored record."""
    c.execute(
        "INSERT OR IGNORE INTO offline_records (offline_id, tid, txn, card, amount_fen, ts, day, source, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (offline_id, tid, txn, card, amount_fen, ts, day, source, now),
    )
    row = c.execute(f"SELECT {_OFFLINE_COLUMNS} FROM offline_records WHERE tid = ? AND txn = ?",
                    (tid, txn)).fetchone()
    return OfflineRow(*row)


def put_uncertain(c: sqlite3.Connection, tid: str, txn: int, body: dict[str, Any], reason: str,
                  now: float) -> None:
    c.execute("INSERT OR IGNORE INTO uncertain (tid, txn, body, reason, created_at) VALUES (?, ?, ?, ?, ?)",
              (tid, txn, _dumps(body), reason, now))
