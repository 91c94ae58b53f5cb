"""Dedup claims and the work queue of the SQLite store: the ``dedup`` and ``work`` tables.

A part of ``receiver.store.sqlite.store.SqliteStateStore``, which calls it for ``claim``,
``claimed``, ``release``, ``claim_and_enqueue`` (one transaction), ``enqueue``, ``take``,
``reclaim``, ``reclaim_own``, ``heartbeat`` (the ``consumer`` table: each consumer's
liveness), ``touch``, ``complete`` and ``backlog`` (and ``opened`` once the file is open).
``take`` waits on an in-process event that ``enqueue`` sets: with SQLite, producer and
consumer are the same process, which also counts the backlog itself. Claims run the purge
(``receiver.store.sqlite.schema``) every ``PURGE_EVERY`` keys.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

from receiver import fastjson
from receiver.store.sqlite.core import SqliteCore
from receiver.store.sqlite.schema import PURGE_EVERY, purge
from receiver.store.values import BacklogFull, WorkItem

_CLAIM = (
    "INSERT INTO dedup (key, expires_at) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE dedup.expires_at <= ?"
)
_HELD = "SELECT 1 FROM dedup WHERE key = ? AND expires_at > ?"
_INSERT = "INSERT INTO work (id, dedup_key, payload, enqueued_at) VALUES (?, ?, ?, ?)"
_HAND_OUT = ("UPDATE work SET owner = ?, touched_at = ?, deliveries = deliveries + 1 WHERE seq IN "
             "(SELECT seq FROM work{indexed} WHERE {which} ORDER BY seq LIMIT ?) "
             "RETURNING seq, id, dedup_key, payload, deliveries")
_TAKE = _HAND_OUT.format(indexed="", which="owner IS NULL")
# Taken work is found by its owner's index, not by a scan of the whole backlog in seq order
# (the planner's choice for ORDER BY seq: 34 ms per heartbeat at 100,000 queued, 0.2 ms so).
_RECLAIM = _HAND_OUT.format(
    indexed=" INDEXED BY work_owner",
    which="owner IS NOT NULL AND owner != ? AND (touched_at <= ? OR owner IN "
          "(SELECT name FROM consumer WHERE alive_until <= ?))")
_RECLAIM_OWN = _HAND_OUT.format(
    indexed="", which="owner = ? AND touched_at <= ? AND seq NOT IN (SELECT value FROM json_each(?))")
_BEAT = ("INSERT INTO consumer (name, alive_until) VALUES (?, ?) "
         "ON CONFLICT(name) DO UPDATE SET alive_until = excluded.alive_until")
# a consumer dead this long and holding nothing is forgotten
_FORGET = ("DELETE FROM consumer WHERE alive_until <= ? AND name NOT IN "
           "(SELECT owner FROM work WHERE owner IS NOT NULL)")
_FORGET_AFTER = 86_400.0


def _row(item: WorkItem, now: float) -> tuple[str, str | None, str, float]:
    """A work item enqueued ``now`` as a ``work`` row's values."""
    return item.id, item.dedup_key, fastjson.dumps(item.payload), now


def _items(rows: list[Any]) -> list[WorkItem]:
    """Work items from ``work`` rows, in queue order."""
    items = [WorkItem(id=r[1], dedup_key=r[2], payload=fastjson.loads(r[3]), ref=str(r[0]), deliveries=r[4])
             for r in rows]
    return sorted(items, key=lambda i: int(i.ref))


class SqliteQueue:
    """Claims and work of the one process that owns ``core``'s file."""

    def __init__(self, core: SqliteCore) -> None:
        self._core = core
        self._writes_since_purge = 0
        self._work_ready = asyncio.Event()
        self._backlog = 0  # rows in `work`: one process owns the file, so it counts them itself

    def opened(self) -> None:
        """Count the work already in the file (a previous process left it)."""
        self._backlog = self._core.read("SELECT count(*) FROM work")[0][0]

    def counted(self, delta: int) -> None:
        """Work another part added (``delta`` > 0: a waiting take wakes) or removed in its own
        transaction (``receiver.store.sqlite.deferred``)."""
        self._backlog += delta
        if delta > 0:
            self._work_ready.set()

    # -- dedup
    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        if not keys:
            return []
        now = self._core.clock.now()
        with self._core.tx() as db:
            return self.claim_in(db, keys, now=now, ttl=ttl)

    def claim_in(self, db: sqlite3.Connection, keys: Sequence[str], *, now: float, ttl: float) -> list[bool]:
        """``claim`` in the caller's transaction ``db`` (``close_resolved`` of the store claims markers)."""
        out = [db.execute(_CLAIM, (key, now + ttl, now)).rowcount == 1 for key in keys]
        self._writes_since_purge += len(keys)
        if self._writes_since_purge >= PURGE_EVERY:
            purge(db, now)
            self._writes_since_purge = 0
        return out

    async def claimed(self, key: str) -> bool:
        now = self._core.clock.now()
        return bool(self._core.read("SELECT 1 FROM dedup WHERE key = ? AND expires_at > ?", (key, now)))

    async def release(self, keys: Sequence[str]) -> None:
        if keys:
            with self._core.tx() as db:
                db.executemany("DELETE FROM dedup WHERE key = ?", [(k,) for k in keys])

    # -- work
    async def claim_and_enqueue(self, items: Sequence[WorkItem], *, ttl: float,
                                max_backlog: int) -> list[bool]:
        if not items:
            return []
        now = self._core.clock.now()
        with self._core.tx() as db:
            seen: set[str] = set()
            flags = []
            for item in items:
                key = item.dedup_key
                fresh = key is None or (key not in seen and not db.execute(_HELD, (key, now)).fetchone())
                if key is not None:
                    seen.add(key)
                flags.append(fresh)
            queued = [i for i, fresh in zip(items, flags, strict=True) if fresh]
            if self._backlog + len(queued) > max_backlog:
                raise BacklogFull(max_backlog)  # rolled back: nothing claimed, nothing added
            keys = [i.dedup_key for i in queued if i.dedup_key is not None]
            db.executemany(_CLAIM, [(key, now + ttl, now) for key in keys])
            db.executemany(_INSERT, [_row(i, now) for i in queued])
            self._writes_since_purge += len(keys)
            if self._writes_since_purge >= PURGE_EVERY:
                purge(db, now)
                self._writes_since_purge = 0
        if queued:
            self._backlog += len(queued)
            self._work_ready.set()
        return flags

    async def enqueue(self, items: Sequence[WorkItem], *, ttl: float, max_backlog: int) -> None:
        if not items:
            return
        now = self._core.clock.now()
        if self._backlog + len(items) > max_backlog:
            raise BacklogFull(max_backlog)
        with self._core.tx() as db:
            db.executemany(_INSERT, [_row(i, now) for i in items])
            keys = [(now + ttl, i.dedup_key) for i in items if i.dedup_key is not None]
            db.executemany("UPDATE dedup SET expires_at = ? WHERE key = ?", keys)
        self._backlog += len(items)
        self._work_ready.set()

    async def take(self, consumer: str, count: int, *, block: float) -> list[WorkItem]:
        items = self._take(consumer, count)
        if items or block <= 0:
            return items
        self._work_ready.clear()
        try:  # a real wait for work, not a TTL: it does not follow the injected clock
            async with asyncio.timeout(block):
                await self._work_ready.wait()
        except TimeoutError:
            return []
        return self._take(consumer, count)

    def _take(self, consumer: str, count: int) -> list[WorkItem]:
        with self._core.tx() as db:
            rows = db.execute(_TAKE, (consumer, self._core.clock.now(), count)).fetchall()
        return _items(rows)

    async def reclaim(self, consumer: str, *, idle: float, count: int) -> list[WorkItem]:
        now = self._core.clock.now()
        with self._core.tx() as db:
            rows = db.execute(_RECLAIM, (consumer, now, consumer, now - idle, now, count)).fetchall()
        return _items(rows)

    async def reclaim_own(self, consumer: str, *, held: Sequence[str], idle: float,
                          count: int) -> list[WorkItem]:
        now = self._core.clock.now()
        mine = fastjson.dumps([int(r) for r in held])
        with self._core.tx() as db:
            rows = db.execute(_RECLAIM_OWN, (consumer, now, consumer, now - idle, mine, count)).fetchall()
        return _items(rows)

    async def heartbeat(self, consumer: str, *, ttl: float) -> None:
        now = self._core.clock.now()
        with self._core.tx() as db:
            db.execute(_BEAT, (consumer, now + ttl))
            db.execute(_FORGET, (now - _FORGET_AFTER,))

    async def touch(self, consumer: str, refs: Sequence[str]) -> None:
        if refs:
            now = self._core.clock.now()
            with self._core.tx() as db:
                db.executemany("UPDATE work SET touched_at = ? WHERE seq = ? AND owner = ?",
                               [(now, int(r), consumer) for r in refs])

    async def complete(self, refs: Sequence[str]) -> None:
        if refs:
            with self._core.tx() as db:
                cur = db.executemany("DELETE FROM work WHERE seq = ?", [(int(r),) for r in refs])
            self._backlog -= cur.rowcount

    async def backlog(self) -> int:
        return self._backlog

    async def oldest_work(self) -> float | None:
        (row,) = self._core.read("SELECT min(enqueued_at) FROM work")
        return None if row[0] is None else float(row[0])
