"""Putting work in the state store's durable queue: new decisions claimed once, approved plans.

Built by ``receiver.runtime``. :meth:`Enqueuer.decisions` is the one claim → enqueue →
release: ``receiver.flow.intake`` queues a webhook's decisions with it, ``receiver.flow.verify``
a ladder's next rung. Each decision's dedup key is claimed briefly first (a process that
dies before the work is durable lets the claim lapse, so the re-send is not taken for a
duplicate); queueing makes the claims long; if anything fails in between, the claims are
given back and the failure goes on to the caller. :meth:`Enqueuer.approved` queues what a
human approved (``receiver.flow.guards.approvals``): never refused for a full queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from receiver.decisions import Decision
from receiver.errors import StateError
from receiver.flow.codec import ApprovedWork, decision_item
from receiver.settings import Settings
from receiver.store.protocol import StateStore

_log = structlog.get_logger("remediator.enqueue")
PENDING_CLAIM = 60.0  # seconds a dedup key is held before its work is durably queued

Between = Callable[[list[Decision], list[Decision]], Awaitable[None]]
"""Called with the fresh decisions and the duplicates after the claim, before the queueing."""


class Enqueuer:
    """Queues work; one per process."""

    def __init__(self, settings: Settings, *, store: StateStore) -> None:
        self._store = store
        self._ttl = settings.guards.dedup_ttl.total_seconds()
        self._size = settings.queue.size

    async def decisions(self, candidates: Sequence[Decision], *,
                        between: Between | None = None) -> list[Decision]:
        """Claim the candidates' dedup keys and queue the fresh ones; returns those.

        ``between`` runs after the claim (a raise there gives the claims back too).
        """
        flags = await self._store.claim([d.dedup_key for d in candidates], ttl=PENDING_CLAIM)
        fresh = [d for d, ok in zip(candidates, flags, strict=True) if ok]
        try:
            if between is not None:
                await between(fresh, [d for d, ok in zip(candidates, flags, strict=True) if not ok])
            await self._store.enqueue([decision_item(d) for d in fresh], ttl=self._ttl,
                                      max_backlog=self._size)
        except BaseException:
            await self._release([d.dedup_key for d in fresh])
            raise
        return fresh

    async def approved(self, work: ApprovedWork) -> None:
        """Queue an approved plan: a human's approval is never refused for a full queue, its
        plan waits behind the rest."""
        await self._store.enqueue([work.item()], ttl=self._ttl, max_backlog=2**62)

    async def _release(self, keys: list[str]) -> None:
        if keys:
            try:
                await self._store.release(keys)
            except StateError as exc:  # they lapse after the short pending claim
                _log.error("state.release_failed", error=str(exc), keys=len(keys))
