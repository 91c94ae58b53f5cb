"""The shared state store for several replicas: one Redis, a Redis Cluster or a Sentinel master.

Built by ``receiver.store.connect.open_store`` for ``state: redis://…`` (``rediss://``,
``unix://``, ``redis+cluster://…``, ``redis+sentinel://…``: ``receiver.stateurl``). Every
read-modify-write is one Lua script. Times come from the injected clock and are stored in
values and scores; Redis TTLs only collect garbage (``receiver.store.redis.core.gc_ms``:
the logical TTL plus a day), so the logic never depends on them. Every key is
``{PREFIX:PART}:…``: one hash slot per part, so every script runs on one Cluster node
(``receiver.store.redis.core``); keys an older version left under ``PREFIX:…`` are moved
when the store opens (``receiver.store.redis.migrate``).

This class is the ``StateStore`` as one object; the work is done by its parts, each
given the one ``receiver.store.redis.core.RedisCore`` (connections, keys, scripts,
errors) and each naming its keys: ``receiver.store.redis.queue`` (dedup claims, the
work stream), ``receiver.store.redis.marks`` (the steps' execute-once markers),
``receiver.store.redis.deferred`` (work waiting out an open circuit or a held lock, on the
queue's slot), ``receiver.store.redis.guards`` (pause, budgets, circuits, locks),
``receiver.store.redis.approvals`` and ``receiver.store.redis.timers`` (timers and
occurrence counts); ``receiver.store.redis.resolved`` closes a webhook's resolved alerts
across three of them (a script per part, in one MULTI). Their Lua is ``receiver.store.redis.lua``.
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.clock import Clock
from receiver.store.redis.approvals import RedisApprovals
from receiver.store.redis.core import RedisCore
from receiver.store.redis.deferred import RedisDeferred
from receiver.store.redis.guards import RedisGuards
from receiver.store.redis.marks import RedisMarks
from receiver.store.redis.migrate import migrate
from receiver.store.redis.queue import RedisQueue
from receiver.store.redis.resolved import RedisResolved
from receiver.store.redis.timers import RedisTimers
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


class RedisStateStore:
    """Implements ``receiver.store.protocol.StateStore`` on Redis, shared by every replica."""

    def __init__(self, url: str, *, clock: Clock, prefix: str) -> None:
        self._prefix = prefix
        self._core = RedisCore(url, clock=clock, prefix=prefix)
        self._queue = RedisQueue(self._core)
        self._marks = RedisMarks(self._core)
        self._deferred = RedisDeferred(self._core)
        self._guards = RedisGuards(self._core)
        self._approvals = RedisApprovals(self._core)
        self._timers = RedisTimers(self._core)
        self._resolved = RedisResolved(self._core)
        self._opened = False

    async def open(self) -> None:
        if self._opened:
            return
        if not self._core.connected:
            self._core.connect()
        await migrate(self._core)
        await self._queue.create_group()
        self._opened = True

    async def close(self) -> None:
        self._opened = False
        await self._core.close()

    async def ping(self) -> None:
        await self._core.ping()

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

    # -- a webhook's resolved alerts: one round trip
    async def close_resolved(self, firings: Sequence[Resolved], *, ttl: float, kinds: Sequence[str],
                             actor: str, comment: str) -> list[Closed]:
        return await self._resolved.close_resolved(firings, ttl=ttl, kinds=kinds, actor=actor,
                                                   comment=comment)

    async def count_occurrence(self, key: str, member: str, *, window: float) -> int:
        return await self._timers.count_occurrence(key, member, window=window)
