"""Putting work in the state store's durable queue: new decisions claimed once, approved plans.

Built by ``receiver.runtime``. :meth:`Enqueuer.decisions` queues new decisions:
``receiver.flow.intake`` a webhook's, ``receiver.flow.verify`` a ladder's next rung. Each
decision's dedup key is claimed and its work queued in one store transaction
(``StateStore.claim_and_enqueue``), so no crash, store failure or failover can leave a
claim without its work (which would take the resend for a duplicate and act on nothing),
nor work without its claim. :meth:`Enqueuer.approved` queues what a human approved
(``receiver.flow.guards.approvals``): never refused for a full queue.

Group commit: the calls to :meth:`Enqueuer.decisions` that come in the same turn of the
event loop (concurrent webhooks wake together from the audit log's group commit), or
while a store call is under way, share one ``claim_and_enqueue`` of at most
:data:`GROUP_MAX` decisions, in the order they came; each caller gets its own answer. One
call alone waits for nothing but the next turn. Sharing changes no caller's outcome: the
store's call is one transaction, so each caller's claims and work are made together (or,
its answer lost, all or none); a firing two callers carry is queued for the first and a
duplicate for the later, as one after the other; when the shared call fails, the callers
are taken again one at a time in the same order (:class:`receiver.store.values.BacklogFull`
refuses just those that do not fit), until the store fails otherwise: the rest then get
that error without a try. A caller cancelled before its turn has nothing queued.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from receiver.decisions import Decision
from receiver.flow.codec import ApprovedWork, decision_item
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import BacklogFull, WorkItem

GROUP_MAX = 400  # decisions per shared store call (one caller's larger call goes alone)


@dataclass(frozen=True, slots=True)
class _Part:
    """One caller's decisions, waiting for their flags (fresh or duplicate)."""

    items: list[WorkItem]
    answer: asyncio.Future[list[bool]]


class Enqueuer:
    """Queues work; one per process."""

    def __init__(self, settings: Settings, *, store: StateStore) -> None:
        self._store = store
        self._ttl = settings.guards.dedup_ttl.total_seconds()
        self._size = settings.queue.size
        self._waiting: deque[_Part] = deque()
        self._group: list[_Part] = []  # in the store call under way
        self._flusher: asyncio.Task[None] | None = None

    async def decisions(self, candidates: Sequence[Decision]) -> tuple[list[Decision], list[Decision]]:
        """Claim the candidates' dedup keys and queue the fresh ones, at once; (fresh, duplicates).

        Raises :class:`receiver.errors.StateError` (``BacklogFull`` when there is no room)
        having claimed and queued nothing, or, when the store's answer was lost, with all of
        it claimed and queued or none of it.
        """
        if not candidates:
            return [], []
        part = _Part([decision_item(d) for d in candidates], asyncio.get_running_loop().create_future())
        self._waiting.append(part)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        flags = await part.answer
        fresh = [d for d, ok in zip(candidates, flags, strict=True) if ok]
        return fresh, [d for d, ok in zip(candidates, flags, strict=True) if not ok]

    async def approved(self, work: ApprovedWork) -> None:
        """Queue an approved plan: a human's approval is never refused for a full queue, its
        plan waits behind the rest."""
        await self._store.enqueue([work.item()], ttl=self._ttl, max_backlog=2**62)

    async def _flush(self) -> None:
        """Run the waiting parts through the store, a group per call, until none waits."""
        try:
            while self._waiting:
                self._group = self._next_group()
                if self._group:
                    await self._claim(self._group)
                self._group = []
        finally:  # cancelled (shutdown): nobody waits for an answer that never comes
            for part in [*self._group, *self._waiting]:
                part.answer.cancel()
            self._group = []
            self._waiting.clear()
            self._flusher = None

    def _next_group(self) -> list[_Part]:
        group: list[_Part] = []
        size = 0
        while self._waiting:
            part = self._waiting[0]
            if part.answer.done():  # its caller was cancelled before its turn
                self._waiting.popleft()
                continue
            if group and size + len(part.items) > GROUP_MAX:
                break
            group.append(self._waiting.popleft())
            size += len(part.items)
        return group

    async def _claim(self, group: list[_Part]) -> None:
        items = group[0].items if len(group) == 1 else [i for part in group for i in part.items]
        try:
            flags = await self._store.claim_and_enqueue(items, ttl=self._ttl, max_backlog=self._size)
        except Exception as exc:  # StateError, or a fault of ours (which one caller's part may cause)
            if len(group) == 1:
                _answer(group[0], exc)
            else:
                await self._one_at_a_time(group)
            return
        start = 0
        for part in group:
            _answer(part, flags[start:start + len(part.items)])
            start += len(part.items)

    async def _one_at_a_time(self, group: list[_Part]) -> None:
        """After a shared call failed: each part alone, in order, as if none had been shared."""
        down: Exception | None = None  # the store failed other than full: the rest are not tried
        for part in group:
            if part.answer.done():
                continue
            if down is not None:
                _answer(part, down)
                continue
            try:
                _answer(part, await self._store.claim_and_enqueue(part.items, ttl=self._ttl,
                                                                  max_backlog=self._size))
            except Exception as exc:
                _answer(part, exc)
                if not isinstance(exc, BacklogFull):
                    down = exc


def _answer(part: _Part, outcome: list[bool] | Exception) -> None:
    if part.answer.done():  # its caller was cancelled meanwhile
        return
    if isinstance(outcome, Exception):
        part.answer.set_exception(outcome)
    else:
        part.answer.set_result(outcome)
