"""The execute-once markers of steps in the SQLite store: the ``step_mark`` table.

A part of ``receiver.store.sqlite.store.SqliteStateStore``, which calls it for
``step_mark`` and ``mark_step`` (one write transaction: read, compare, write). A row is a
marker until ``expires_at`` (the clock's seconds); expired rows are ignored here and
deleted by the purge (``receiver.store.sqlite.schema``).
"""

from __future__ import annotations

import json

from receiver.store.sqlite.core import SqliteCore
from receiver.store.values import StepMark, StepState

_GET = "SELECT body FROM step_mark WHERE key = ? AND expires_at > ?"
_PUT = ("INSERT INTO step_mark (key, state, holder, expires_at, body) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET state = excluded.state, holder = excluded.holder, "
        "expires_at = excluded.expires_at, body = excluded.body")


def _mark(body: str | None) -> StepMark | None:
    return None if body is None else StepMark.from_dict(json.loads(body))


class SqliteMarks:
    """Markers of the one process that owns ``core``'s file."""

    def __init__(self, core: SqliteCore) -> None:
        self._core = core

    async def step_mark(self, key: str) -> StepMark | None:
        rows = self._core.read(_GET, (key, self._core.clock.now()))
        return _mark(rows[0][0]) if rows else None

    async def mark_step(self, key: str, mark: StepMark | None, *, ttl: float, if_absent: bool,
                        if_claimed: bool, if_holder: str | None) -> tuple[bool, StepMark | None]:
        now = self._core.clock.now()
        with self._core.tx() as db:
            row = db.execute(_GET, (key, now)).fetchone()
            held = _mark(row[0]) if row else None
            if held is None:
                allowed = if_absent
            else:
                allowed = ((if_claimed and held.state is StepState.CLAIMED)
                           or (if_holder is not None and held.holder == if_holder))
            if not allowed:
                return False, held
            if mark is None:
                db.execute("DELETE FROM step_mark WHERE key = ?", (key,))
            else:
                db.execute(_PUT, (key, mark.state.value, mark.holder, now + ttl,
                                  json.dumps(mark.as_dict(), separators=(",", ":"))))
        return True, held
