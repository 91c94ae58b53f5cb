"""Timers and occurrence counts in the SQLite store (verify watches, escalation timers, the P2 policy).

A part of ``receiver.store.sqlite.store.SqliteStateStore``, which calls it for ``put_timers``,
``claim_due_timers``, ``finish_timer``, ``take_timers`` and ``count_occurrence``. A
``timer`` row is armed (``done = 0``), held while ``held_until`` is in the future, and a
tombstone (``done = 1``) until ``expires_at``, when the purge
(``receiver.store.sqlite.schema.purge``) removes it; ``occurrence`` rows are forgotten
once their window has passed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from receiver import fastjson
from receiver.store.sqlite.core import SqliteCore
from receiver.store.values import Timer, decode_timers


class SqliteTimers:
    """Timers armed once per id and claimed for a lease, in ``core``'s file."""

    def __init__(self, core: SqliteCore) -> None:
        self._core = core

    async def put_timers(self, timers: Sequence[Timer]) -> list[bool]:
        now = self._core.clock.now()
        armed = []
        with self._core.tx() as db:
            for timer in timers:
                db.execute("DELETE FROM timer WHERE id = ? AND expires_at <= ?", (timer.id, now))
                cur = db.execute(
                    "INSERT INTO timer (id, kind, fingerprint, due_at, expires_at, body) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                    (timer.id, timer.kind, timer.fingerprint, timer.due_at, timer.expires_at,
                     fastjson.dumps(timer.as_dict())))
                armed.append(cur.rowcount == 1)
        return armed

    async def claim_due_timers(self, *, lease: float, limit: int) -> list[Timer]:
        now = self._core.clock.now()
        with self._core.tx() as db:
            rows = db.execute(
                "UPDATE timer SET held_until = ?, claims = claims + 1 WHERE id IN "
                "(SELECT id FROM timer WHERE done = 0 AND due_at <= ? AND "
                "(held_until IS NULL OR held_until <= ?) ORDER BY due_at, id LIMIT ?) RETURNING body, claims",
                (now + lease, now, now, limit)).fetchall()
        return decode_timers(rows)

    async def finish_timer(self, timer_id: str) -> None:
        with self._core.tx() as db:
            db.execute("UPDATE timer SET done = 1, held_until = NULL WHERE id = ?", (timer_id,))

    async def take_timers(self, fingerprint: str, kinds: Sequence[str]) -> list[Timer]:
        if not kinds:
            return []
        now = self._core.clock.now()
        with self._core.tx() as db:
            return self.take_in(db, fingerprint, kinds, now=now)

    def take_in(self, db: sqlite3.Connection, fingerprint: str, kinds: Sequence[str], *,
                now: float) -> list[Timer]:
        """``take_timers`` in the caller's transaction ``db`` (``close_resolved`` of the store)."""
        if not kinds:
            return []
        marks = ",".join("?" * len(kinds))
        rows = db.execute(
            f"UPDATE timer SET done = 1 WHERE fingerprint = ? AND done = 0 AND kind IN ({marks}) "  # noqa: S608
            "AND (held_until IS NULL OR held_until <= ?) RETURNING body, claims",
            (fingerprint, *kinds, now)).fetchall()
        return decode_timers(rows)

    async def count_occurrence(self, key: str, member: str, *, window: float) -> int:
        now = self._core.clock.now()
        with self._core.tx() as db:
            db.execute("DELETE FROM occurrence WHERE key = ? AND at <= ?", (key, now - window))
            db.execute("INSERT INTO occurrence (key, member, at, forget_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT DO NOTHING", (key, member, now, now + window))
            return int(db.execute("SELECT count(*) FROM occurrence WHERE key = ?", (key,)).fetchone()[0])
