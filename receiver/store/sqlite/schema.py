"""The SQLite store's tables, and the purge that deletes their expired rows.

``SCHEMA`` is run by ``receiver.store.sqlite.core.SqliteCore.open`` (every statement is
``IF NOT EXISTS``: a file from an earlier run is kept as it is, and :func:`migrate` adds
what a file from an earlier version lacks); ``purge`` is run by
``receiver.store.sqlite.queue.SqliteQueue.claim`` every ``PURGE_EVERY`` claimed keys, in
the claim's transaction. Times are the injected clock's seconds.
"""

from __future__ import annotations

import sqlite3

from receiver.store.values import KEEP_DECIDED

SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (expires_at);
CREATE TABLE IF NOT EXISTS work (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, dedup_key TEXT, payload TEXT NOT NULL,
    owner TEXT, touched_at REAL, deliveries INTEGER NOT NULL DEFAULT 0, enqueued_at REAL
);
CREATE INDEX IF NOT EXISTS work_owner ON work (owner, seq);
CREATE TABLE IF NOT EXISTS consumer (name TEXT PRIMARY KEY, alive_until REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_mark (
    key TEXT PRIMARY KEY, state TEXT NOT NULL, holder TEXT NOT NULL, expires_at REAL NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS step_mark_expiry ON step_mark (expires_at);
CREATE TABLE IF NOT EXISTS deferred (
    id TEXT PRIMARY KEY, dedup_key TEXT, payload TEXT NOT NULL, not_before REAL NOT NULL,
    wake TEXT, rank REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deferred_due ON deferred (not_before);
CREATE INDEX IF NOT EXISTS deferred_wake ON deferred (wake, rank);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cooldown (
    key TEXT PRIMARY KEY, until REAL NOT NULL, member TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cooldown_until ON cooldown (until);
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
CREATE INDEX IF NOT EXISTS approval_created ON approval (created_at);
CREATE TABLE IF NOT EXISTS timer (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, due_at REAL NOT NULL,
    expires_at REAL NOT NULL, held_until REAL, done INTEGER NOT NULL DEFAULT 0,
    claims INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timer_due ON timer (done, due_at);
CREATE INDEX IF NOT EXISTS timer_fp ON timer (fingerprint, done);
CREATE INDEX IF NOT EXISTS timer_expiry ON timer (expires_at);
CREATE TABLE IF NOT EXISTS occurrence (
    key TEXT NOT NULL, member TEXT NOT NULL, at REAL NOT NULL, forget_at REAL NOT NULL,
    PRIMARY KEY (key, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS occurrence_at ON occurrence (key, at);
CREATE INDEX IF NOT EXISTS occurrence_forget ON occurrence (forget_at);
"""



def migrate(db: sqlite3.Connection) -> None:
    """Bring a file from an earlier version up to ``SCHEMA`` (columns added since; their rows
    from before carry NULL)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(work)")}
    if "enqueued_at" not in columns:
        db.execute("ALTER TABLE work ADD COLUMN enqueued_at REAL")


PURGE_EVERY = 1000
"""Claimed keys between two purges."""


def purge(db: sqlite3.Connection, now: float) -> None:
    """Delete what has expired: dedup claims, execute-once markers, cooldowns, approvals decided
    ``KEEP_DECIDED`` ago, timers (tombstones or armed) past their expiry, occurrences past their window (a key
    counted once and never again would otherwise stay forever).

    It runs inside a claim's transaction, on the event loop, so every delete finds its rows by
    an index (``tests/receiver/store/test_sqlite.py`` holds it to that): without one, 100,000
    timers (the P1 timers of a storm) made each purge a 36 ms scan, every 1,000 claims."""
    db.execute("DELETE FROM dedup WHERE expires_at <= ?", (now,))
    db.execute("DELETE FROM step_mark WHERE expires_at <= ?", (now,))
    db.execute("DELETE FROM cooldown WHERE until <= ?", (now,))
    # lock rows stay: the next fencing token must be larger than any handed out before
    db.execute("DELETE FROM approval WHERE status != 'pending' AND created_at <= ?",
               (now - KEEP_DECIDED,))
    db.execute("DELETE FROM timer WHERE expires_at <= ?", (now,))
    db.execute("DELETE FROM occurrence WHERE forget_at <= ?", (now,))
