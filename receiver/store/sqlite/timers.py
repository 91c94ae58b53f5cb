"""Timers and occurrence counts of the SQLite store (``receiver.store.protocol.StateStore``'s last part).

Mixed into ``receiver.store.sqlite.store.SqliteStateStore``, which owns the connection and the
transactions; kept apart so the store's file stays about queues and guards. A timer row
is armed (``done = 0``), held while ``held_until`` is in the future, and a tombstone
(``done = 1``) until ``expires_at``, when the purge removes it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from receiver.clock import Clock
from receiver.store.values import Timer

SCHEMA = """
CREATE TABLE IF NOT EXISTS timer (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, due_at REAL NOT NULL,
    expires_at REAL NOT NULL, held_until REAL, done INTEGER NOT NULL DEFAULT 0,
    claims INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timer_due ON timer (done, due_at);
CREATE INDEX IF NOT EXISTS timer_fp ON timer (fingerprint, done);
CREATE TABLE IF NOT EXISTS occurrence (
    key TEXT NOT NULL, member TEXT NOT NULL, at REAL NOT NULL, forget_at REAL NOT NULL,
    PRIMARY KEY (key, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS occurrence_at ON occurrence (key, at);
CREATE INDEX IF NOT EXISTS occurrence_forget ON occurrence (forget_at);
"""


def purge(db: sqlite3.Connection, now: float) -> None:
    """Forget tombstones and armed timers past their expiry, and occurrences past their window
    (a key counted once and never again would otherwise stay forever); called by the store's purge."""
    db.execute("DELETE FROM timer WHERE expires_at <= ?", (now,))
    db.execute("DELETE FROM occurrence WHERE forget_at <= ?", (now,))


class SqliteTimers:
    """The timer operations; the store provides ``_clock``, ``_tx`` and ``_read``."""

    _clock: Clock

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def put_timer(self, timer: Timer) -> bool:
        now = self._clock.now()
        with self._tx() as db:
            db.execute("DELETE FROM timer WHERE id = ? AND expires_at <= ?", (timer.id, now))
            cur = db.execute(
                "INSERT INTO timer (id, kind, fingerprint, due_at, expires_at, body) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (timer.id, timer.kind, timer.fingerprint, timer.due_at, timer.expires_at,
                 json.dumps(timer.as_dict())))
            return cur.rowcount == 1

    async def claim_due_timers(self, *, lease: float, limit: int) -> list[Timer]:
        now = self._clock.now()
        with self._tx() as db:
            rows = db.execute(
                "UPDATE timer SET held_until = ?, claims = claims + 1 WHERE id IN "
                "(SELECT id FROM timer WHERE done = 0 AND due_at <= ? AND "
                "(held_until IS NULL OR held_until <= ?) ORDER BY due_at, id LIMIT ?) RETURNING body, claims",
                (now + lease, now, now, limit)).fetchall()
        return sorted(_timers(rows), key=lambda t: (t.due_at, t.id))

    async def finish_timer(self, timer_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE timer SET done = 1, held_until = NULL WHERE id = ?", (timer_id,))

    async def take_timers(self, fingerprint: str, kinds: Sequence[str]) -> list[Timer]:
        if not kinds:
            return []
        now = self._clock.now()
        marks = ",".join("?" * len(kinds))
        with self._tx() as db:
            rows = db.execute(
                f"UPDATE timer SET done = 1 WHERE fingerprint = ? AND done = 0 AND kind IN ({marks}) "  # noqa: S608
                "AND (held_until IS NULL OR held_until <= ?) RETURNING body, claims",
                (fingerprint, *kinds, now)).fetchall()
        return sorted(_timers(rows), key=lambda t: (t.due_at, t.id))

    async def count_occurrence(self, key: str, member: str, *, window: float) -> int:
        now = self._clock.now()
        with self._tx() as db:
            db.execute("DELETE FROM occurrence WHERE key = ? AND at <= ?", (key, now - window))
            db.execute("INSERT INTO occurrence (key, member, at, forget_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT DO NOTHING", (key, member, now, now + window))
            return int(db.execute("SELECT count(*) FROM occurrence WHERE key = ?", (key,)).fetchone()[0])


def _timers(rows: list[Any]) -> Iterator[Timer]:
    return (Timer.from_dict(json.loads(body), claims=claims) for body, claims in rows)
