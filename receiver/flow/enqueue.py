"""Putting work in the state store's durable queue: new decisions claimed once, approved plans.

Built by ``receiver.runtime``. :meth:`Enqueuer.decisions` queues new decisions:
``receiver.flow.intake`` a webhook's, ``receiver.flow.verify`` a ladder's next rung. Each
decision's dedup key is claimed and its work queued in one store transaction
(``StateStore.claim_and_enqueue``), so no crash, store failure or failover can leave a
claim without its work (which would take the resend for a duplicate and act on nothing),
nor work without its claim. :meth:`Enqueuer.approved` queues what a human approved
(``receiver.flow.guards.approvals``): never refused for a full queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.decisions import Decision
from receiver.flow.codec import ApprovedWork, decision_item
from receiver.settings import Settings
from receiver.store.protocol import StateStore


class Enqueuer:
    """Queues work; one per process."""

    def __init__(self, settings: Settings, *, store: StateStore) -> None:
        self._store = store
        self._ttl = settings.guards.dedup_ttl.total_seconds()
        self._size = settings.queue.size

    async def decisions(self, candidates: Sequence[Decision]) -> tuple[list[Decision], list[Decision]]:
        """Claim the candidates' dedup keys and queue the fresh ones, at once; (fresh, duplicates).

        Raises :class:`receiver.errors.StateError` (``BacklogFull`` when there is no room)
        having claimed and queued nothing, or, when the store's answer was lost, with all of
        it claimed and queued or none of it.
        """
        flags = await self._store.claim_and_enqueue([decision_item(d) for d in candidates], ttl=self._ttl,
                                                    max_backlog=self._size)
        fresh = [d for d, ok in zip(candidates, flags, strict=True) if ok]
        return fresh, [d for d, ok in zip(candidates, flags, strict=True) if not ok]

    async def approved(self, work: ApprovedWork) -> None:
        """Queue an approved plan: a human's approval is never refused for a full queue, its
        plan waits behind the rest."""
        await self._store.enqueue([work.item()], ttl=self._ttl, max_backlog=2**62)
