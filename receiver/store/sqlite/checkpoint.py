"""The SQLite store's checkpointer: copies the WAL back into the database file off the event loop.

Started and stopped by ``receiver.store.sqlite.core.SqliteCore`` with its connection. In WAL
mode every commit appends the pages it changed to the WAL, and by default the commit that
takes the WAL past 1,000 pages also checkpoints it: copies those pages into the database
file and syncs both files (two fsyncs), on the event loop, under every request in flight.
Here a thread of its own, on a connection of its own, runs a ``PASSIVE`` checkpoint (it
never blocks a writer nor waits for one) every ``interval`` seconds, and the event loop's
connection checkpoints by itself only past ``FALLBACK_PAGES`` (the WAL's bound if this thread
falls behind, fails or is gone). Nothing here changes what a commit makes durable.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

# The event loop's connection checkpoints by itself once the WAL holds this many pages (64 MiB
# of 4 KiB pages): only when this thread has not kept the WAL short.
FALLBACK_PAGES = 16_384
INTERVAL = 0.25  # seconds between two checkpoints


class Checkpointer:
    """A thread that checkpoints one SQLite file's WAL every ``interval`` seconds until stopped."""

    def __init__(self, path: Path, *, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.runs = 0  # checkpoints this thread made
        self.last = (0, 0)  # the last one's (pages in the WAL, pages copied)
        self.failures = 0  # checkpoints that raised (the fallback keeps the WAL bounded)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None

    def start(self) -> None:
        """Open the thread's own connection and start it (the file is open and in WAL mode);
        nothing more when it runs already."""
        if self.running:
            return
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="remediator-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the checkpoint it is in, if any) and close its connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def checkpoint(self) -> tuple[int, int]:
        """One ``PASSIVE`` checkpoint now: (pages in the WAL, pages of them in the database file)."""
        if self._db is None:
            raise RuntimeError("the checkpointer is not started")
        _busy, log, done = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(log), int(done)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.last = self.checkpoint()
                self.runs += 1
            except sqlite3.Error:
                self.failures += 1
