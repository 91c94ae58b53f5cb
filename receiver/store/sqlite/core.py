"""The SQLite store's core: its one connection, its write transactions, errors as StateError.

Built by ``receiver.store.sqlite.store.SqliteStateStore`` and handed to each of its parts
(``receiver.store.sqlite.queue``, ``guards``, ``approvals``, ``timers``), which read and
write through it. One connection in WAL mode, used on the event loop (calls are short
and local); every read-modify-write is one ``BEGIN IMMEDIATE`` transaction. The WAL is
copied back into the file by ``receiver.store.sqlite.checkpoint`` on a thread of its own,
not by the commits on the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from receiver.clock import Clock
from receiver.errors import StateError
from receiver.store.sqlite.checkpoint import FALLBACK_PAGES, INTERVAL, Checkpointer
from receiver.store.sqlite.schema import SCHEMA, migrate


class SqliteCore:
    """One SQLite file for one process; every failure a StateError naming the file."""

    def __init__(self, path: Path, *, clock: Clock, checkpoint_interval: float = INTERVAL) -> None:
        self.path = path
        self.clock = clock
        self.checkpointer = Checkpointer(path, interval=checkpoint_interval)
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open the file (made when missing) and create the tables it lacks."""
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")
            db.executescript(SCHEMA)
            migrate(db)
            self.checkpointer.start()
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {self.path}: {exc}") from None
        self._db = db

    def close(self) -> None:
        self.checkpointer.stop()
        if self._db is not None:
            self._db.close()
            self._db = None

    def conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateError("the state store is not open")
        return self._db

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite error becomes StateError."""
        db = self.conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None
