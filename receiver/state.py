"""Shared state behind one interface; this build ships the SQLite store.

Opened and closed by ``receiver.runtime``; intake claims dedup keys through it. The
SQLite store is one file in WAL mode, durable across restarts; its calls are short and
local, so they run on the event loop (one connection, no threads to coordinate).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from receiver.clock import Clock
from receiver.errors import StateError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (expires_at);
"""
_CLAIM = (
    "INSERT INTO dedup (key, expires_at) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE dedup.expires_at <= ?"
)
_PURGE_EVERY = 1000


class StateStore(Protocol):
    """What the receiver keeps outside its process memory."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`StateError` when the store cannot be used."""
        ...

    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        """Claim each key for ``ttl`` seconds; True where this call claimed it first."""
        ...

    async def release(self, keys: Sequence[str]) -> None:
        """Give claims back (intake could not complete what it claimed them for)."""
        ...


class SqliteStateStore:
    """The default store: one SQLite file."""

    def __init__(self, path: Path, *, clock: Clock) -> None:
        self._path = path
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._claims_since_purge = 0

    async def open(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
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

    async def ping(self) -> None:
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"state database {self._path}: {exc}") from None

    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        if not keys:
            return []
        db = self._conn()
        now = self._clock.now()
        out: list[bool] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for key in keys:
                    cur = db.execute(_CLAIM, (key, now + ttl, now))
                    out.append(cur.rowcount == 1)
                self._claims_since_purge += len(keys)
                if self._claims_since_purge >= _PURGE_EVERY:
                    db.execute("DELETE FROM dedup WHERE expires_at <= ?", (now,))
                    self._claims_since_purge = 0
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StateError(f"state database {self._path}: {exc}") from None
        return out

    async def release(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            self._conn().executemany("DELETE FROM dedup WHERE key = ?", [(k,) for k in keys])
        except sqlite3.Error as exc:
            raise StateError(f"state database {self._path}: {exc}") from None


def open_state_store(url: str, *, clock: Clock) -> StateStore:
    """The store a ``state:`` URL names."""
    if url.startswith("sqlite:///"):
        return SqliteStateStore(Path(url.removeprefix("sqlite:///")), clock=clock)
    raise StateError(f"unsupported state URL {url!r}")
