"""The durable store: settings that make a COMMIT durable, group commit, isolation of a failing write."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from edge_agent.store import Store, connect, insert_offline, put_answers

from edge_agent_support import run

pytestmark = pytest.mark.both_loops  # on asyncio's loop and on uvloop (conftest.py)


def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "a.db")
    try:
        conn = connect(tmp_path / "a.db")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        conn.close()
    finally:
        store.close()


def test_concurrent_writes_share_commits_and_survive_reopen(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Store.open(tmp_path / "a.db")
        try:
            answers = await asyncio.gather(*(
                store.put_answer("T1", txn, 0x10, "d", {"txn": txn, "ok": True}, 1.0) for txn in range(200)))
            assert [a.body["txn"] for a in answers] == list(range(200))
            assert store.commits < 200  # writes queued during a commit went into the next one
        finally:
            store.close()
        again = Store.open(tmp_path / "a.db")
        try:
            assert again.get_answer("T1", 199).body == {"txn": 199, "ok": True}
        finally:
            again.close()

    run(scenario)


def test_first_answer_stays(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Store.open(tmp_path / "a.db")
        try:
            await store.put_answer("T1", 1, 0x10, "d1", {"n": 1}, 1.0)
            kept = await store.put_answer("T1", 1, 0x10, "d2", {"n": 2}, 2.0)
            assert (kept.digest, kept.body) == ("d1", {"n": 1})
        finally:
            store.close()

    run(scenario)


def test_a_batch_of_answers_keeps_the_first_answer_of_each(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Store.open(tmp_path / "a.db")
        try:
            fresh = await store.write(lambda c: put_answers(
                c, [("T1", 1, 0x10, "d1", {"n": 1}), ("T2", 1, 0x10, "d1", {"n": 2})], 1.0))
            assert [(a.digest, a.body) for a in fresh] == [("d1", {"n": 1}), ("d1", {"n": 2})]
            # (T1, 1) is answered already: its first answer comes back, the others are stored.
            mixed = await store.write(lambda c: put_answers(
                c, [("T1", 2, 0x10, "d3", {"n": 3}), ("T1", 1, 0x11, "d9", {"n": 9}), ("T3", 5, 0x10, "d4", {"n": 4})],
                2.0))
            assert [(a.cmd, a.digest, a.body) for a in mixed] == [
                (0x10, "d3", {"n": 3}), (0x10, "d1", {"n": 1}), (0x10, "d4", {"n": 4})]
            assert store.get_answer("T1", 1).body == {"n": 1}
            assert [store.get_answer(tid, txn).body for tid, txn in (("T2", 1), ("T1", 2), ("T3", 5))] == [
                {"n": 2}, {"n": 3}, {"n": 4}]
        finally:
            store.close()

    run(scenario)


def test_a_failing_write_undoes_only_itself(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Store.open(tmp_path / "a.db")

        def half_then_fail(c: sqlite3.Connection) -> None:
            insert_offline(c, "oid-bad", "T1", 2, "c", 100, 0, "2026-11-18", "agent", 1.0)
            raise RuntimeError("boom")

        try:
            good = store.write(lambda c: insert_offline(c, "oid-good", "T1", 1, "c", 100, 0, "2026-11-18", "agent", 1.0))
            bad = store.write(half_then_fail)
            results = await asyncio.gather(good, bad, return_exceptions=True)
            assert results[0].offline_id == "oid-good"
            assert isinstance(results[1], RuntimeError)
            assert [row.offline_id for row in store.offline_rows()] == ["oid-good"]
        finally:
            store.close()

    run(scenario)


def test_a_write_whose_caller_is_cancelled_still_commits(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Store.open(tmp_path / "a.db")
        try:
            release = threading.Event()

            def slow(c: sqlite3.Connection) -> str:
                release.wait(5)  # holds the writer until the caller is cancelled
                return insert_offline(c, "oid-1", "T1", 1, "c", 100, 0, "2026-11-18", "agent", 1.0).offline_id

            caller = asyncio.create_task(store.write(slow))
            await asyncio.sleep(0)  # the write is queued
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            release.set()
            # The next write is committed after the cancelled one: by then that one is on disk too.
            await store.set_kv("after", "1")
            assert [row.offline_id for row in store.offline_rows()] == ["oid-1"]
            assert store.get_kv("after") == "1"
        finally:
            store.close()

    run(scenario)


def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Store.open(tmp_path / "a.db")
        store.close()
        with pytest.raises(RuntimeError):
            await store.set_kv("k", "v")

    run(scenario)
