"""The default state store: one SQLite file in WAL mode, durable across restarts.

Built by ``receiver.store.connect.open_store`` for ``state: sqlite:///PATH``; used by one
replica, whose one process is both producer and consumer of the work queue.

This class is the ``StateStore`` as one object; the work is done by its parts, each
given the one ``receiver.store.sqlite.core.SqliteCore`` (connection, transactions,
errors): ``receiver.store.sqlite.queue`` (dedup claims, the work queue),
``receiver.store.sqlite.marks`` (the steps' execute-once markers),
``receiver.store.sqlite.deferred`` (work waiting out an open circuit or a held lock),
``receiver.store.sqlite.guards`` (pause, budgets, circuits, locks),
``receiver.store.sqlite.approvals`` and ``receiver.store.sqlite.timers`` (timers and
occurrence counts); ``close_resolved`` runs the queue's, the approvals' and the timers' part
in one transaction. The tables and their purge are ``receiver.store.sqlite.schema``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from receiver.clock import Clock
from receiver.store.sqlite.approvals import SqliteApprovals
from receiver.store.sqlite.checkpoint import INTERVAL, Checkpointer
from receiver.store.sqlite.core import SqliteCore
from receiver.store.sqlite.deferred import SqliteDeferred
from receiver.store.sqlite.guards import SqliteGuards
from receiver.store.sqlite.marks import SqliteMarks
from receiver.store.sqlite.queue import SqliteQueue
from receiver.store.sqlite.timers import SqliteTimers
from receiver.store.values import (
    Admission,
    Approval,
    ApprovalStatus,
    Budget,
    Circuit,
    Closed,
    Pause,
    Resolved,
    StepMark,
    Timer,
    Transition,
    WorkItem,
)


class SqliteStateStore:
    """Implements ``receiver.store.protocol.StateStore`` on one SQLite file."""

    def __init__(self, path: Path, *, clock: Clock, checkpoint_interval: float = INTERVAL) -> None:
        self._core = SqliteCore(path, clock=clock, checkpoint_interval=checkpoint_interval)
        self._queue = SqliteQueue(self._core)
        self._marks = SqliteMarks(self._core)
        self._deferred = SqliteDeferred(self._core, self._queue)
        self._guards = SqliteGuards(self._core)
        self._approvals = SqliteApprovals(self._core)
        self._timers = SqliteTimers(self._core)

    async def open(self) -> None:
        self._core.open()
        self._queue.opened()

    async def close(self) -> None:
        self._core.close()

    async def ping(self) -> None:
        self._core.read("SELECT 1")

    @property
    def checkpointer(self) -> Checkpointer:
        """The thread that checkpoints the WAL (tests watch it)."""
        return self._core.checkpointer

    def _conn(self) -> sqlite3.Connection:
        """The open connection (tests look at the tables through it)."""
        return self._core.conn()

    # -- dedup and work queue
    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        return await self._queue.claim(keys, ttl=ttl)

    async def claimed(self, key: str) -> bool:
        return await self._queue.claimed(key)

    async def release(self, keys: Sequence[str]) -> None:
        await self._queue.release(keys)

    # -- execute-once markers
    async def step_mark(self, key: str) -> StepMark | None:
        return await self._marks.step_mark(key)

    async def mark_step(self, key: str, mark: StepMark | None, *, ttl: float, if_absent: bool = False,
                        if_claimed: bool = False,
                        if_holder: str | None = None) -> tuple[bool, StepMark | None]:
        return await self._marks.mark_step(key, mark, ttl=ttl, if_absent=if_absent, if_claimed=if_claimed,
                                           if_holder=if_holder)

    async def claim_and_enqueue(self, items: Sequence[WorkItem], *, ttl: float,
                                max_backlog: int) -> list[bool]:
        return await self._queue.claim_and_enqueue(items, ttl=ttl, max_backlog=max_backlog)

    async def enqueue(self, items: Sequence[WorkItem], *, ttl: float, max_backlog: int) -> None:
        await self._queue.enqueue(items, ttl=ttl, max_backlog=max_backlog)

    async def defer(self, ref: str, item: WorkItem, *, not_before: float, wake: str | None = None,
                    rank: float = 0.0) -> bool:
        return await self._deferred.defer(ref, item, not_before=not_before, wake=wake, rank=rank)

    async def wake_deferred(self, wake: str, *, count: int) -> int:
        return await self._deferred.wake_deferred(wake, count=count)

    async def release_deferred(self, *, limit: int) -> tuple[int, int]:
        return await self._deferred.release_deferred(limit=limit)

    async def deferred_count(self) -> int:
        return await self._deferred.deferred_count()

    async def deferred(self) -> list[tuple[WorkItem, float]]:
        return await self._deferred.deferred()

    async def take(self, consumer: str, count: int, *, block: float) -> list[WorkItem]:
        return await self._queue.take(consumer, count, block=block)

    async def reclaim(self, consumer: str, *, idle: float, count: int) -> list[WorkItem]:
        return await self._queue.reclaim(consumer, idle=idle, count=count)

    async def reclaim_own(self, consumer: str, *, held: Sequence[str], idle: float,
                          count: int) -> list[WorkItem]:
        return await self._queue.reclaim_own(consumer, held=held, idle=idle, count=count)

    async def heartbeat(self, consumer: str, *, ttl: float) -> None:
        await self._queue.heartbeat(consumer, ttl=ttl)

    async def touch(self, consumer: str, refs: Sequence[str]) -> None:
        await self._queue.touch(consumer, refs)

    async def complete(self, refs: Sequence[str]) -> None:
        await self._queue.complete(refs)

    async def backlog(self) -> int:
        return await self._queue.backlog()

    async def oldest_work(self) -> float | None:
        return await self._queue.oldest_work()

    # -- guards: pause, budgets, circuit breakers, locks
    async def get_pause(self) -> Pause | None:
        return await self._guards.get_pause()

    async def set_pause(self, pause: Pause) -> bool:
        return await self._guards.set_pause(pause)

    async def clear_pause(self) -> Pause | None:
        return await self._guards.clear_pause()

    async def admit(self, budget: Budget, *, spend: bool) -> Admission:
        return await self._guards.admit(budget, spend=spend)

    async def circuit(self, target: str) -> Circuit:
        return await self._guards.circuit(target)

    async def record_result(self, target: str, *, ok: bool, threshold: int, cooloff: float) -> Circuit:
        return await self._guards.record_result(target, ok=ok, threshold=threshold, cooloff=cooloff)

    async def reset_circuit(self, target: str) -> Circuit:
        return await self._guards.reset_circuit(target)

    async def acquire_lock(self, key: str, owner: str, *, ttl: float,
                           breaking: str | None = None) -> int | None:
        return await self._guards.acquire_lock(key, owner, ttl=ttl, breaking=breaking)

    async def lock_valid(self, key: str, token: int) -> bool:
        return await self._guards.lock_valid(key, token)

    async def release_lock(self, key: str, token: int) -> None:
        await self._guards.release_lock(key, token)

    # -- approvals
    async def put_approval(self, approval: Approval) -> None:
        await self._approvals.put_approval(approval)

    async def get_approval(self, approval_id: str) -> Approval | None:
        return await self._approvals.get_approval(approval_id)

    async def list_approvals(self, statuses: Sequence[ApprovalStatus] | None = None) -> list[Approval]:
        return await self._approvals.list_approvals(statuses)

    async def decide_approval(self, approval_id: str, to: ApprovalStatus, *, actor: str,
                              comment: str | None) -> Transition:
        return await self._approvals.decide_approval(approval_id, to, actor=actor, comment=comment)

    async def pending_approvals_for(self, fingerprint: str) -> list[Approval]:
        return await self._approvals.pending_approvals_for(fingerprint)

    # -- timers and occurrence counts
    async def put_timer(self, timer: Timer) -> bool:
        return (await self._timers.put_timers([timer]))[0]

    async def put_timers(self, timers: Sequence[Timer]) -> list[bool]:
        return await self._timers.put_timers(timers)

    async def claim_due_timers(self, *, lease: float, limit: int) -> list[Timer]:
        return await self._timers.claim_due_timers(lease=lease, limit=limit)

    async def finish_timer(self, timer_id: str) -> None:
        await self._timers.finish_timer(timer_id)

    async def take_timers(self, fingerprint: str, kinds: Sequence[str]) -> list[Timer]:
        return await self._timers.take_timers(fingerprint, kinds)

    # -- a webhook's resolved alerts: one transaction
    async def close_resolved(self, firings: Sequence[Resolved], *, ttl: float, kinds: Sequence[str],
                             actor: str, comment: str) -> list[Closed]:
        if not firings:
            return []
        now = self._core.clock.now()
        with self._core.tx() as db:
            self._queue.claim_in(db, [f.marker for f in firings], now=now, ttl=ttl)  # markers first
            return [Closed(approvals=tuple(self._approvals.cancel_pending_in(db, f.fingerprint, now=now,
                                                                            actor=actor, comment=comment)),
                           timers=tuple(self._timers.take_in(db, f.fingerprint, kinds, now=now)))
                    for f in firings]

    async def count_occurrence(self, key: str, member: str, *, window: float) -> int:
        return await self._timers.count_occurrence(key, member, window=window)
