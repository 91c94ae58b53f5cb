"""Approvals in the SQLite store: the ``approval`` table, one row per request with its JSON body.

A part of ``receiver.store.sqlite.store.SqliteStateStore``, which calls it for
``put_approval``, ``get_approval``, ``list_approvals``, ``decide_approval`` and
``pending_approvals_for``. Decided rows are purged ``receiver.store.values.KEEP_DECIDED``
after they were created (``receiver.store.sqlite.schema.purge``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from receiver.store.sqlite.core import SqliteCore
from receiver.store.values import Approval, ApprovalStatus, Transition

_PENDING = "SELECT body FROM approval WHERE fingerprint = ? AND status = 'pending' ORDER BY created_at, id"


def _approvals(rows: list[Any]) -> list[Approval]:
    return [Approval.from_dict(json.loads(r[0])) for r in rows]


def _decide(db: sqlite3.Connection, current: Approval, to: ApprovalStatus, *, now: float, actor: str,
            comment: str | None) -> Approval:
    """Move the pending ``current`` to ``to`` (to expired instead when past its expiry); as moved."""
    expired = now >= current.expires_at and to is not ApprovalStatus.EXPIRED
    new_status = ApprovalStatus.EXPIRED if expired else to
    updated = Approval.from_dict({**current.as_dict(), "status": new_status.value,
                                  "decided_by": "system" if expired else actor,
                                  "decided_at": now, "comment": None if expired else comment})
    db.execute("UPDATE approval SET status = ?, body = ? WHERE id = ?",
               (new_status.value, json.dumps(updated.as_dict()), current.id))
    return updated


class SqliteApprovals:
    """Approval records in ``core``'s file; a decision is one transaction."""

    def __init__(self, core: SqliteCore) -> None:
        self._core = core

    async def put_approval(self, approval: Approval) -> None:
        with self._core.tx() as db:
            db.execute("INSERT INTO approval (id, status, fingerprint, created_at, body) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (approval.id, approval.status.value, approval.fingerprint, approval.created_at,
                        json.dumps(approval.as_dict())))

    async def get_approval(self, approval_id: str) -> Approval | None:
        found = _approvals(self._core.read("SELECT body FROM approval WHERE id = ?", (approval_id,)))
        return found[0] if found else None

    async def list_approvals(self, statuses: Sequence[ApprovalStatus] | None = None) -> list[Approval]:
        if statuses is None:
            return _approvals(self._core.read("SELECT body FROM approval ORDER BY created_at DESC, id"))
        marks = ",".join("?" * len(statuses))
        return _approvals(self._core.read(f"SELECT body FROM approval WHERE status IN ({marks}) "  # noqa: S608
                                          "ORDER BY created_at DESC, id", [s.value for s in statuses]))

    async def decide_approval(self, approval_id: str, to: ApprovalStatus, *, actor: str,
                              comment: str | None) -> Transition:
        now = self._core.clock.now()
        with self._core.tx() as db:
            row = db.execute("SELECT body FROM approval WHERE id = ?", (approval_id,)).fetchone()
            if row is None:
                return Transition(None, changed=False)
            (current,) = _approvals([row])
            if current.status is not ApprovalStatus.PENDING:
                return Transition(current, changed=False)
            updated = _decide(db, current, to, now=now, actor=actor, comment=comment)
        return Transition(updated, changed=updated.status is to)

    def cancel_pending_in(self, db: sqlite3.Connection, fingerprint: str, *, now: float, actor: str,
                          comment: str) -> list[Approval]:
        """Cancel the pending approvals of ``fingerprint`` in the caller's transaction ``db``, as
        ``decide_approval`` would (one past its expiry is expired); the approvals as moved, oldest
        first. For ``close_resolved`` of ``receiver.store.sqlite.store.SqliteStateStore``."""
        pending = _approvals(db.execute(_PENDING, (fingerprint,)).fetchall())
        return [_decide(db, a, ApprovalStatus.CANCELLED, now=now, actor=actor, comment=comment)
                for a in pending]

    async def pending_approvals_for(self, fingerprint: str) -> list[Approval]:
        return _approvals(self._core.read(_PENDING, (fingerprint,)))
