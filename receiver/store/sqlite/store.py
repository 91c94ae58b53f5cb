"""The default state store: one SQLite file in WAL mode, durable across restarts.

Built by ``receiver.store.connect.open_store`` for ``state: sqlite:///PATH``; used by one
replica. Calls are short and local, so they run on the event loop (one connection, no
threads); every read-modify-write is one ``BEGIN IMMEDIATE`` transaction. ``take`` waits
on an in-process event that ``enqueue`` sets: with SQLite, producer and consumer are the
same process.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from receiver.clock import Clock
from receiver.errors import StateError
from receiver.store.sqlite import timers as state_sqlite_timers
from receiver.store.values import (
    Admission,
    Approval,
    ApprovalStatus,
    BacklogFull,
    Budget,
    Circuit,
    Pause,
    Transition,
    Verdict,
    WorkItem,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (expires_at);
CREATE TABLE IF NOT EXISTS work (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, dedup_key TEXT, payload TEXT NOT NULL,
    owner TEXT, touched_at REAL, deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS work_owner ON work (owner, seq);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cooldown (
    key TEXT PRIMARY KEY, until REAL NOT NULL, member TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spent (key TEXT NOT NULL, at REAL NOT NULL, member TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spent_key ON spent (key, at);
CREATE TABLE IF NOT EXISTS circuit (
    target TEXT PRIMARY KEY, failures INTEGER NOT NULL, open_until REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lock (
    key TEXT PRIMARY KEY, owner TEXT, token INTEGER NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approval (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at REAL NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS approval_fp ON approval (fingerprint, status);
""" + state_sqlite_timers.SCHEMA
_CLAIM = (
    "INSERT INTO dedup (key, expires_at) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE dedup.expires_at <= ?"
)
_PURGE_EVERY = 1000
_BLAST_KEY = "\x00blast"
_KEEP_DECIDED = 7 * 24 * 3600.0  # decided approvals are kept this long, as in Redis


class SqliteStateStore(state_sqlite_timers.SqliteTimers):
    """Implements ``receiver.store.protocol.StateStore`` on one SQLite file."""

    def __init__(self, path: Path, *, clock: Clock) -> None:
        self._path = path
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._writes_since_purge = 0
        self._work_ready = asyncio.Event()
        self._backlog = 0  # rows in `work`: one process owns the file, so it counts them itself

    async def open(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            self._backlog = db.execute("SELECT count(*) FROM work").fetchone()[0]
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {self._path}: {exc}") from None
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateError("the state store is not open")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite error becomes StateError."""
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StateError(f"state database {self._path}: {exc}") from None

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"state database {self._path}: {exc}") from None

    async def ping(self) -> None:
        self._read("SELECT 1")

    # -- dedup
    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        if not keys:
            return []
        now = self._clock.now()
        with self._tx() as db:
            out = [db.execute(_CLAIM, (key, now + ttl, now)).rowcount == 1 for key in keys]
            self._writes_since_purge += len(keys)
            if self._writes_since_purge >= _PURGE_EVERY:
                self._purge(db, now)
        return out

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM dedup WHERE expires_at <= ?", (now,))
        db.execute("DELETE FROM cooldown WHERE until <= ?", (now,))
        # lock rows stay: the next fencing token must be larger than any handed out before
        db.execute("DELETE FROM approval WHERE status != 'pending' AND created_at <= ?",
                   (now - _KEEP_DECIDED,))
        state_sqlite_timers.purge(db, now)
        self._writes_since_purge = 0

    async def claimed(self, key: str) -> bool:
        now = self._clock.now()
        return bool(self._read("SELECT 1 FROM dedup WHERE key = ? AND expires_at > ?", (key, now)))

    async def release(self, keys: Sequence[str]) -> None:
        if keys:
            with self._tx() as db:
                db.executemany("DELETE FROM dedup WHERE key = ?", [(k,) for k in keys])

    # -- work queue
    async def enqueue(self, items: Sequence[WorkItem], *, ttl: float, max_backlog: int) -> None:
        if not items:
            return
        now = self._clock.now()
        if self._backlog + len(items) > max_backlog:
            raise BacklogFull(max_backlog)
        with self._tx() as db:
            db.executemany(
                "INSERT INTO work (id, dedup_key, payload) VALUES (?, ?, ?)",
                [(i.id, i.dedup_key, json.dumps(i.payload, separators=(",", ":"))) for i in items],
            )
            keys = [(now + ttl, i.dedup_key) for i in items if i.dedup_key is not None]
            db.executemany("UPDATE dedup SET expires_at = ? WHERE key = ?", keys)
        self._backlog += len(items)
        self._work_ready.set()

    @staticmethod
    def _items(rows: list[Any]) -> list[WorkItem]:
        return [WorkItem(id=r[1], dedup_key=r[2], payload=json.loads(r[3]), ref=str(r[0]),
                         deliveries=r[4]) for r in rows]

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
        with self._tx() as db:
            rows = db.execute(
                "UPDATE work SET owner = ?, touched_at = ?, deliveries = deliveries + 1 WHERE seq IN "
                "(SELECT seq FROM work WHERE owner IS NULL ORDER BY seq LIMIT ?) "
                "RETURNING seq, id, dedup_key, payload, deliveries",
                (consumer, self._clock.now(), count),
            ).fetchall()
        return sorted(self._items(rows), key=lambda i: int(i.ref))

    async def reclaim(self, consumer: str, *, idle: float, count: int) -> list[WorkItem]:
        now = self._clock.now()
        with self._tx() as db:
            rows = db.execute(
                "UPDATE work SET owner = ?, touched_at = ?, deliveries = deliveries + 1 WHERE seq IN "
                "(SELECT seq FROM work WHERE owner IS NOT NULL AND owner != ? AND touched_at <= ? "
                "ORDER BY seq LIMIT ?) RETURNING seq, id, dedup_key, payload, deliveries",
                (consumer, now, consumer, now - idle, count),
            ).fetchall()
        return sorted(self._items(rows), key=lambda i: int(i.ref))

    async def touch(self, consumer: str, refs: Sequence[str]) -> None:
        if refs:
            now = self._clock.now()
            with self._tx() as db:
                db.executemany("UPDATE work SET touched_at = ? WHERE seq = ? AND owner = ?",
                               [(now, int(r), consumer) for r in refs])

    async def complete(self, refs: Sequence[str]) -> None:
        if refs:
            with self._tx() as db:
                cur = db.executemany("DELETE FROM work WHERE seq = ?", [(int(r),) for r in refs])
            self._backlog -= cur.rowcount

    async def backlog(self) -> int:
        return self._backlog

    # -- pause
    async def get_pause(self) -> Pause | None:
        rows = self._read("SELECT value FROM kv WHERE key = 'pause'")
        return Pause(**json.loads(rows[0][0])) if rows else None

    async def set_pause(self, pause: Pause) -> bool:
        body = json.dumps({"source": pause.source, "actor": pause.actor, "detail": pause.detail,
                           "since": pause.since})
        with self._tx() as db:
            cur = db.execute("INSERT INTO kv (key, value) VALUES ('pause', ?) ON CONFLICT DO NOTHING",
                             (body,))
            return cur.rowcount == 1

    async def clear_pause(self) -> Pause | None:
        with self._tx() as db:
            row = db.execute("DELETE FROM kv WHERE key = 'pause' RETURNING value").fetchone()
        return Pause(**json.loads(row[0])) if row else None

    # -- budgets
    async def admit(self, budget: Budget, *, spend: bool) -> Admission:
        now = self._clock.now()
        with self._tx() as db:
            if budget.cooldown_key is not None:
                row = db.execute("SELECT until, member FROM cooldown WHERE key = ?",
                                 (budget.cooldown_key,)).fetchone()
                if row is not None and row[0] > now and row[1] != budget.member:
                    return Admission(Verdict.COOLDOWN, row[0] - now)
            windows = []
            if budget.rate_key is not None:
                windows.append((budget.rate_key, budget.rate_max, budget.rate_window, Verdict.RATE_LIMIT))
            if budget.blast_max is not None:
                windows.append((_BLAST_KEY, budget.blast_max, budget.blast_window, Verdict.BLAST_RADIUS))
            unspent = []
            for key, limit, window, verdict in windows:
                db.execute("DELETE FROM spent WHERE key = ? AND at <= ?", (key, now - window))
                if db.execute("SELECT 1 FROM spent WHERE key = ? AND member = ?",
                              (key, budget.member)).fetchone():
                    continue  # this execution paid already (it is being taken up again)
                count, oldest = db.execute("SELECT count(*), min(at) FROM spent WHERE key = ?",
                                           (key,)).fetchone()
                if count >= limit:
                    return Admission(verdict, oldest + window - now if oldest is not None else None)
                unspent.append(key)
            if spend:
                if budget.cooldown_key is not None and budget.cooldown > 0:
                    db.execute("INSERT INTO cooldown (key, until, member) VALUES (?, ?, ?) ON CONFLICT(key) "
                               "DO UPDATE SET until = excluded.until, member = excluded.member "
                               "WHERE cooldown.member != excluded.member",
                               (budget.cooldown_key, now + budget.cooldown, budget.member))
                db.executemany("INSERT INTO spent (key, at, member) VALUES (?, ?, ?)",
                               [(key, now, budget.member) for key in unspent])
        return Admission(Verdict.OK)

    # -- circuit breakers
    async def circuit(self, target: str) -> Circuit:
        rows = self._read("SELECT failures, open_until FROM circuit WHERE target = ?", (target,))
        return Circuit(rows[0][0], rows[0][1]) if rows else Circuit()

    async def record_result(self, target: str, *, ok: bool, threshold: int, cooloff: float) -> Circuit:
        now = self._clock.now()
        with self._tx() as db:
            if ok:
                db.execute("DELETE FROM circuit WHERE target = ?", (target,))
                return Circuit()
            row = db.execute("SELECT failures FROM circuit WHERE target = ?", (target,)).fetchone()
            failures = (row[0] if row else 0) + 1
            open_until = now + cooloff if failures >= threshold else None
            db.execute("INSERT INTO circuit (target, failures, open_until) VALUES (?, ?, ?) "
                       "ON CONFLICT(target) DO UPDATE SET failures = excluded.failures, "
                       "open_until = excluded.open_until", (target, failures, open_until))
        return Circuit(failures, open_until)

    async def reset_circuit(self, target: str) -> Circuit:
        with self._tx() as db:
            row = db.execute("DELETE FROM circuit WHERE target = ? RETURNING failures, open_until",
                             (target,)).fetchone()
        return Circuit(row[0], row[1]) if row else Circuit()

    # -- locks
    async def acquire_lock(self, key: str, owner: str, *, ttl: float) -> int | None:
        now = self._clock.now()
        with self._tx() as db:
            row = db.execute("SELECT owner, token, expires_at FROM lock WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] is not None and row[2] > now:
                return None
            token = (row[1] if row else 0) + 1
            db.execute("INSERT INTO lock (key, owner, token, expires_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, token = excluded.token, "
                       "expires_at = excluded.expires_at", (key, owner, token, now + ttl))
        return int(token)

    async def lock_valid(self, key: str, token: int) -> bool:
        rows = self._read("SELECT owner, token, expires_at FROM lock WHERE key = ?", (key,))
        return bool(rows) and rows[0][0] is not None and rows[0][1] == token \
            and rows[0][2] > self._clock.now()

    async def release_lock(self, key: str, token: int) -> None:
        # The row stays (owner cleared) so the next token is still larger than this one.
        with self._tx() as db:
            db.execute("UPDATE lock SET owner = NULL WHERE key = ? AND token = ?", (key, token))

    # -- approvals
    async def put_approval(self, approval: Approval) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO approval (id, status, fingerprint, created_at, body) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (approval.id, approval.status.value, approval.fingerprint, approval.created_at,
                        json.dumps(approval.as_dict())))

    async def get_approval(self, approval_id: str) -> Approval | None:
        rows = self._read("SELECT body FROM approval WHERE id = ?", (approval_id,))
        return Approval.from_dict(json.loads(rows[0][0])) if rows else None

    async def list_approvals(self, statuses: Sequence[ApprovalStatus] | None = None) -> list[Approval]:
        if statuses is None:
            rows = self._read("SELECT body FROM approval ORDER BY created_at DESC, id")
        else:
            marks = ",".join("?" * len(statuses))
            rows = self._read(f"SELECT body FROM approval WHERE status IN ({marks}) "  # noqa: S608
                              "ORDER BY created_at DESC, id", [s.value for s in statuses])
        return [Approval.from_dict(json.loads(r[0])) for r in rows]

    async def decide_approval(self, approval_id: str, to: ApprovalStatus, *, actor: str,
                              comment: str | None) -> Transition:
        now = self._clock.now()
        with self._tx() as db:
            row = db.execute("SELECT body FROM approval WHERE id = ?", (approval_id,)).fetchone()
            if row is None:
                return Transition(None, changed=False)
            current = Approval.from_dict(json.loads(row[0]))
            if current.status is not ApprovalStatus.PENDING:
                return Transition(current, changed=False)
            expired = now >= current.expires_at and to is not ApprovalStatus.EXPIRED
            new_status = ApprovalStatus.EXPIRED if expired else to
            updated = Approval.from_dict({**current.as_dict(), "status": new_status.value,
                                          "decided_by": "system" if expired else actor,
                                          "decided_at": now, "comment": None if expired else comment})
            db.execute("UPDATE approval SET status = ?, body = ? WHERE id = ?",
                       (new_status.value, json.dumps(updated.as_dict()), approval_id))
        return Transition(updated, changed=not expired)

    async def pending_approvals_for(self, fingerprint: str) -> list[Approval]:
        rows = self._read("SELECT body FROM approval WHERE fingerprint = ? AND status = 'pending' "
                          "ORDER BY created_at, id", (fingerprint,))
        return [Approval.from_dict(json.loads(r[0])) for r in rows]
