"""Putting work in the state store's durable queue: new decisions claimed once, approved plans.

Built by ``receiver.runtime``. :meth:`Enqueuer.decisions` queues new decisions:
``receiver.flow.intake`` a webhook's, ``receiver.flow.verify`` a ladder's next rung. Each
decision's dedup key is claimed and its work queued in one store transaction
(``StateStore.claim_and_enqueue``), so no crash, store failure or failover can leave a
claim without its work (which would take the resend for a duplicate and act on nothing),
nor work without its claim. :meth:`Enqueuer.approved` queues what a human approved
(``receiver.flow.guards.approvals``): never refused for a full queue.

Group commit (``receiver.flow.group.GroupCommit``): the calls to :meth:`Enqueuer.decisions`
that come in the same turn of the event loop, or while a store call is under way, share one
``claim_and_enqueue`` of at most :data:`GROUP_MAX` decisions, in the order they came; each
caller gets its own answer. Sharing changes no caller's outcome: the store's call is one
transaction, so each caller's claims and work are made together (or, its answer lost, all or
none); a firing two callers carry is queued for the first and a duplicate for the later, as
one after the other; when the shared call fails, the callers are taken again one at a time in
the same order (:class:`receiver.store.values.BacklogFull` refuses just those that do not
fit), until the store fails otherwise: the rest then get that error without a try. A caller
cancelled before its turn has nothing queued.
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.decisions import Decision
from receiver.flow.codec import ApprovedWork, decision_item
from receiver.flow.group import GroupCommit
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import BacklogFull, WorkItem

GROUP_MAX = 400  # decisions per shared store call (one caller's larger call goes alone)


class Enqueuer:
    """Queues work; one per process."""

    def __init__(self, settings: Settings, *, store: StateStore) -> None:
        self._store = store
        self._ttl = settings.guards.dedup_ttl.total_seconds()
        self._size = settings.queue.size
        self._group: GroupCommit[list[WorkItem], list[bool]] = GroupCommit(
            self._claim, size=len, limit=GROUP_MAX, goes_on=lambda exc: isinstance(exc, BacklogFull))

    async def decisions(self, candidates: Sequence[Decision]) -> tuple[list[Decision], list[Decision]]:
        """Claim the candidates' dedup keys and queue the fresh ones, at once; (fresh, duplicates).

        Raises :class:`receiver.errors.StateError` (``BacklogFull`` when there is no room)
        having claimed and queued nothing, or, when the store's answer was lost, with all of
        it claimed and queued or none of it.
        """
        if not candidates:
            return [], []
        flags = await self._group([decision_item(d) for d in candidates])
        fresh = [d for d, ok in zip(candidates, flags, strict=True) if ok]
        return fresh, [d for d, ok in zip(candidates, flags, strict=True) if not ok]

    async def approved(self, work: ApprovedWork) -> None:
        """Queue an approved plan: a human's approval is never refused for a full queue, its
        plan waits behind the rest."""
        await self._store.enqueue([work.item()], ttl=self._ttl, max_backlog=2**62)

    async def _claim(self, parts: Sequence[list[WorkItem]]) -> list[list[bool] | Exception]:
        """One ``claim_and_enqueue`` for the parts of a group; each part's flags."""
        items = parts[0] if len(parts) == 1 else [i for part in parts for i in part]
        flags = await self._store.claim_and_enqueue(items, ttl=self._ttl, max_backlog=self._size)
        out: list[list[bool] | Exception] = []
        start = 0
        for part in parts:
            out.append(flags[start:start + len(part)])
            start += len(part)
        return out
