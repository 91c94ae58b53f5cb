"""The SQLite state store: dedup claims with TTLs on an injected clock, across reopen."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from receiver.errors import StateError
from receiver.store.connect import open_store
from receiver.store.sqlite.queue import _RECLAIM as RECLAIM
from receiver.store.sqlite.schema import purge
from receiver.store.sqlite.store import SqliteStateStore
from receiver.store.values import WorkItem
from tests.support.fakeclock import FakeClock


async def test_claims_are_first_wins_and_expire(tmp_path: Path) -> None:
    """A key is claimed once until its TTL passes, then it can be claimed again."""
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock=clock)
    await store.open()
    assert await store.claim(["a", "b", "a"], ttl=60) == [True, True, False]
    assert await store.claim(["a"], ttl=60) == [False]
    clock.advance(60)
    assert await store.claim(["a", "b"], ttl=60) == [True, True]
    await store.close()


async def test_claims_survive_reopen(tmp_path: Path) -> None:
    """A claim made before a restart still holds after it."""
    clock = FakeClock()
    first = SqliteStateStore(tmp_path / "s.db", clock=clock)
    await first.open()
    await first.claim(["k"], ttl=600)
    await first.close()
    second = SqliteStateStore(tmp_path / "s.db", clock=clock)
    await second.open()
    assert await second.claim(["k"], ttl=600) == [False]
    await second.release(["k"])
    assert await second.claim(["k"], ttl=600) == [True]
    await second.close()


async def test_expired_rows_are_purged(tmp_path: Path) -> None:
    """Expired claims are deleted as claims go by, so the file does not grow without bound."""
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock=clock)
    await store.open()
    await store.claim([f"old-{i}" for i in range(999)], ttl=1)
    clock.advance(2)
    await store.claim(["new"], ttl=1)
    await store.claim(["new2"], ttl=1)
    db = store._conn()
    assert db.execute("SELECT count(*) FROM dedup").fetchone()[0] < 10
    await store.close()


async def test_occurrences_past_their_window_are_purged(tmp_path: Path) -> None:
    """A (rule, subject) counted once and never again is forgotten once its window has passed."""
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock=clock)
    await store.open()
    for i in range(50):
        await store.count_occurrence(f"rule\x1fpod-{i}", "a", window=100)
    await store.count_occurrence("rule\x1flong", "a", window=10_000)
    clock.advance(101)
    await store.claim([f"k-{i}" for i in range(999)], ttl=1)
    await store.claim(["purge"], ttl=1)
    db = store._conn()
    assert db.execute("SELECT key FROM occurrence").fetchall() == [("rule\x1flong",)]
    await store.close()


async def test_unusable_store_raises_state_error(tmp_path: Path) -> None:
    """A closed store or an unopenable file is a StateError, never a bare sqlite error."""
    store = SqliteStateStore(tmp_path / "s.db", clock=FakeClock())
    with pytest.raises(StateError):
        await store.ping()
    bad = SqliteStateStore(tmp_path / "missing-dir" / "s.db", clock=FakeClock())
    with pytest.raises(StateError, match="cannot open state database"):
        await bad.open()
    with pytest.raises(StateError, match="unsupported state URL"):
        open_store("memcached://x", clock=FakeClock())


async def test_the_purge_finds_what_expired_by_index(tmp_path: Path) -> None:
    """Every delete of the purge (run inside a claim's transaction, on the event loop) finds its
    rows by an index, never by scanning its table: a table grows with the alerts (a storm's
    P1 timers), and a scan of 100,000 timers took 36 ms of every 1,000th claim."""
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock=clock)
    await store.open()
    await store.close()
    db = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    purge(db, clock.now())
    db.set_trace_callback(None)
    deletes = [s for s in statements if s.startswith("DELETE")]
    assert len(deletes) == 6
    scans = {s: [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {s}")] for s in deletes}
    assert {s: plan for s, plan in scans.items() if not any("USING" in step for step in plan)} == {}
    db.close()



async def test_reclaiming_finds_taken_work_by_index(tmp_path: Path) -> None:
    """The feeder's reclaim (every heartbeat, on the event loop) reads the taken items through the
    owner's index, not the whole backlog in order: 100,000 queued items made it a 34 ms scan."""
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock=clock)
    await store.open()
    await store.enqueue([WorkItem(id=f"w{n}", payload={"n": n}) for n in range(50)], ttl=60, max_backlog=100)
    taken = await store.take("dead", 5, block=0)
    clock.advance(120)
    assert [i.id for i in await store.reclaim("alive", idle=60, count=10)] == [i.id for i in taken]
    await store.close()
    db = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    args = ("alive", clock.now(), "alive", clock.now() - 60, clock.now(), 10)
    plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {RECLAIM}", args)]
    db.close()
    assert not [step for step in plan if step.startswith("SCAN work")], plan


async def _write_pages(store: SqliteStateStore, pages: int) -> None:
    """Commit about ``pages`` WAL pages through the store, 50 transactions of work items."""
    body = "x" * 3_000  # under a page each, so every item takes a page of its own
    per_tx = pages // 50
    for tx in range(50):
        await store.enqueue([WorkItem(id=f"w{tx}-{n}", payload={"b": body}) for n in range(per_tx)],
                            ttl=60, max_backlog=100_000)


async def test_the_event_loop_leaves_the_checkpoint_to_its_thread(tmp_path: Path) -> None:
    """Commits on the event loop do not copy the WAL into the file (and fsync twice) once it
    passes SQLite's default 1,000 pages: the checkpointer's thread does, so its first
    checkpoint finds every page the commits wrote and copies them all."""
    store = SqliteStateStore(tmp_path / "s.db", clock=FakeClock(), checkpoint_interval=3600)
    await store.open()
    try:
        await _write_pages(store, 1_500)
        log, copied = store.checkpointer.checkpoint()
        assert log >= 1_500
        assert copied == log
    finally:
        await store.close()


async def test_the_checkpointer_runs_until_the_store_closes(tmp_path: Path) -> None:
    """The thread checkpoints on its own while the store is open (the WAL copied back, all
    of it), and closing the store stops it and closes its connection."""
    store = SqliteStateStore(tmp_path / "s.db", clock=FakeClock(), checkpoint_interval=0.01)
    await store.open()
    checkpointer = store.checkpointer
    try:
        await _write_pages(store, 200)
        runs = checkpointer.runs
        for _ in range(500):
            if checkpointer.runs > runs + 1:
                break
            await asyncio.sleep(0.01)
        log, copied = checkpointer.last
        assert checkpointer.runs > runs + 1
        assert copied == log
        assert checkpointer.failures == 0
    finally:
        await store.close()
    assert not checkpointer.running
    assert "remediator-sqlite-checkpoint" not in {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="not started"):
        checkpointer.checkpoint()
