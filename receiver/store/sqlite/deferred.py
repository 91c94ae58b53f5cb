"""Deferred work in the SQLite store: the ``deferred`` table.

A part of ``receiver.store.sqlite.store.SqliteStateStore``, which calls it for ``defer``,
``wake_deferred``, ``release_deferred``, ``deferred_count`` and ``deferred``. A decision an
open circuit or a held target lock stopped (``receiver.flow.deferral``) leaves the ``work``
table and waits here, by its id, until its ``not_before``, or until what it waits for frees
(``wake_deferred``: a lock's holder let it go, a circuit closed); ``release_deferred`` (the
feeder, before each take) moves the due ones back into ``work``. Each move is one
transaction, so an item is always in exactly one of the two tables. The queue part is told
what moved (its backlog count, a waiting take).
"""

from __future__ import annotations

import json

from receiver.store.sqlite.core import SqliteCore
from receiver.store.sqlite.queue import SqliteQueue
from receiver.store.values import WorkItem


class SqliteDeferred:
    """Deferred items of the one process that owns ``core``'s file."""

    def __init__(self, core: SqliteCore, queue: SqliteQueue) -> None:
        self._core = core
        self._queue = queue

    async def defer(self, ref: str, item: WorkItem, *, not_before: float, wake: str | None = None,
                    rank: float = 0.0) -> bool:
        payload = json.dumps(item.payload, separators=(",", ":"))
        with self._core.tx() as db:
            if db.execute("DELETE FROM work WHERE seq = ?", (int(ref),)).rowcount != 1:
                return False
            db.execute("INSERT OR REPLACE INTO deferred (id, dedup_key, payload, not_before, wake, rank) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (item.id, item.dedup_key, payload, not_before, wake, rank))
        self._queue.counted(-1)
        return True

    async def wake_deferred(self, wake: str, *, count: int) -> int:
        now = self._core.clock.now()
        with self._core.tx() as db:
            return db.execute("UPDATE deferred SET not_before = min(not_before, ?), wake = NULL WHERE id IN "
                              "(SELECT id FROM deferred WHERE wake = ? ORDER BY rank, id LIMIT ?)",
                              (now, wake, count)).rowcount

    async def release_deferred(self, *, limit: int) -> tuple[int, int]:
        now = self._core.clock.now()
        with self._core.tx() as db:
            rows = db.execute("DELETE FROM deferred WHERE id IN (SELECT id FROM deferred "
                              "WHERE not_before <= ? ORDER BY not_before LIMIT ?) "
                              "RETURNING id, dedup_key, payload, not_before", (now, limit)).fetchall()
            rows.sort(key=lambda r: r[3])
            db.executemany("INSERT INTO work (id, dedup_key, payload, enqueued_at) VALUES (?, ?, ?, ?)",
                           [(r[0], r[1], r[2], now) for r in rows])
            (waiting,) = db.execute("SELECT count(*) FROM deferred").fetchone()
        if rows:
            self._queue.counted(len(rows))
        return len(rows), int(waiting)

    async def deferred_count(self) -> int:
        return int(self._core.read("SELECT count(*) FROM deferred")[0][0])

    async def deferred(self) -> list[tuple[WorkItem, float]]:
        rows = self._core.read("SELECT id, dedup_key, payload, not_before FROM deferred "
                               "ORDER BY not_before, id")
        return [(WorkItem(id=r[0], dedup_key=r[1], payload=json.loads(r[2])), float(r[3])) for r in rows]
