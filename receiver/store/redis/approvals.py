"""Approvals in the Redis store: put once, decided once across replicas, listed, found by alert.

A part of ``receiver.store.redis.store.RedisStateStore``, which calls it for
``put_approval``, ``get_approval``, ``list_approvals``, ``decide_approval`` and
``pending_approvals_for``. Keys, all tagged ``{PREFIX:approvals}`` (one slot: a script
writes a record and both indexes at once): ``approval:ID`` (hash: status, expires_at, fingerprint,
body, decision), ``approvals`` (ids by created_at) and ``approvals:pending:FP`` (pending
ids of one alert). A record lives until its expiry plus
``receiver.store.values.KEEP_DECIDED``, or that long after its decision; index entries
whose record is gone are dropped as they are met.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from receiver.errors import StateError
from receiver.store.redis.core import RedisCore, gc_ms, num
from receiver.store.values import KEEP_DECIDED, Approval, ApprovalStatus, Transition


def approval_of(status: str, body: str, decision: str | None) -> Approval:
    """An approval from its record's status, body and decision (``receiver.store.redis.resolved`` too)."""
    data = {**json.loads(body), "status": status}
    if decision:
        data.update(json.loads(decision))
    return Approval.from_dict(data)


class RedisApprovals:
    """Approval records on ``core``'s Redis; each change one script."""

    def __init__(self, core: RedisCore) -> None:
        self._core = core

    def _key(self, *parts: str) -> str:
        return self._core.key("approvals", *parts)

    async def put_approval(self, approval: Approval) -> None:
        key = self._key
        gc = gc_ms(approval.expires_at - self._core.clock.now() + KEEP_DECIDED)
        keys = [key("approval", approval.id), key("approvals"),
                key("approvals", "pending", approval.fingerprint)]
        args = [approval.id, approval.status.value, num(approval.created_at), num(approval.expires_at),
                approval.fingerprint, json.dumps(approval.as_dict()), gc, key("approval", "")]
        with self._core.errors():
            added = await self._core.run("PUT_APPROVAL", keys, args)
        if not added:
            raise StateError(f"approval {approval.id} exists already")

    async def get_approval(self, approval_id: str) -> Approval | None:
        with self._core.errors():
            status, body, decision = await self._core.cmd("HMGET", self._key("approval", approval_id),
                                                          "status", "body", "decision")
        return approval_of(status, body, decision) if status is not None else None

    async def _approvals(self, ids: Sequence[str], *, index: str, drop: str) -> list[Approval]:
        """The records of ``ids``; the ids whose record is gone leave ``index`` (by command ``drop``)."""
        if not ids:
            return []
        with self._core.errors():
            rows = await self._core.reads([("HMGET", self._key("approval", approval_id), "status", "body",
                                            "decision") for approval_id in ids])
        found = [approval_of(*row) for row in rows if row[0] is not None]
        gone = [approval_id for approval_id, row in zip(ids, rows, strict=True) if row[0] is None]
        if gone:
            with self._core.errors():
                await self._core.write(drop, index, *gone)
        return found

    async def list_approvals(self, statuses: Sequence[ApprovalStatus] | None = None) -> list[Approval]:
        index = self._key("approvals")
        with self._core.errors():
            ids = await self._core.cmd("ZRANGE", index, "0", "-1")
        found = await self._approvals(ids, index=index, drop="ZREM")
        wanted = set(ApprovalStatus) if statuses is None else set(statuses)
        return sorted((a for a in found if a.status in wanted), key=lambda a: (-a.created_at, a.id))

    async def decide_approval(self, approval_id: str, to: ApprovalStatus, *, actor: str,
                              comment: str | None) -> Transition:
        now = self._core.clock.now()
        moved = json.dumps({"decided_by": actor, "decided_at": now, "comment": comment})
        expired = json.dumps({"decided_by": "system", "decided_at": now, "comment": None})
        args = [num(now), to.value, moved, expired, gc_ms(KEEP_DECIDED),
                self._key("approvals", "pending", ""), approval_id]
        with self._core.errors():
            result = await self._core.run("DECIDE_APPROVAL", [self._key("approval", approval_id),
                                                              self._key("approvals")], args)
        if not result[0]:
            return Transition(None, changed=False)
        _, changed, status, body, decision = result
        return Transition(approval_of(status, body, decision), changed=bool(changed))

    async def pending_approvals_for(self, fingerprint: str) -> list[Approval]:
        index = self._key("approvals", "pending", fingerprint)
        with self._core.errors():
            ids = sorted(await self._core.cmd("SMEMBERS", index))
        found = await self._approvals(ids, index=index, drop="SREM")
        pending = [a for a in found if a.status is ApprovalStatus.PENDING]
        return sorted(pending, key=lambda a: (a.created_at, a.id))
