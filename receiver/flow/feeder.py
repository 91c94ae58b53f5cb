"""The feeder: moves accepted work from the state store's queue into the local buffer.

Started and stopped by ``receiver.runtime``. It takes only as much as the workers have
room for. Every ``queue.heartbeat`` it says this process is alive (``state.heartbeat``,
lasting 3 heartbeats), takes over the work of a replica whose heartbeat expired (at once) or
that stopped touching an item for ``queue.visibility_timeout``, and takes up again this
process's own items that nothing here holds any more (a worker gone; not the completer's:
those are held until removed). Every ``visibility_timeout / 3`` it touches what this process
holds. At start-up it takes every item a previous process left unfinished (after a crash).
At stop it ends its heartbeat, so what it leaves is taken over at once. Stopping is bounded:
its loops check a stop flag (a wait for work blocks ``_BLOCK`` at most) and its tasks are
cancelled again until they end (``receiver.flow.cancel``: redis-py can lose a cancellation).
Before a take, at most every ``_RELEASE_EVERY`` (a tenth of a second: under load it takes
far more often, and each call is a transaction or a round trip), it queues again the
deferred work whose time has come (``StateStore.release_deferred``,
``receiver.flow.deferral``): while any wait, it waits for new work at most
``_BLOCK_DEFERRED`` at a time, so a deferred decision is back in the queue within a fifth
of a second of its ``not_before``.
Cadences are real waits (asyncio); liveness and idle times are the store's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from receiver.errors import StateError
from receiver.flow.cancel import stop_tasks
from receiver.flow.workqueue import WorkQueue
from receiver.store.protocol import StateStore
from receiver.store.values import WorkItem

_log = structlog.get_logger("remediator.feeder")
_BATCH = 256
_BLOCK = 1.0
_STOP_WITHIN = 10.0  # seconds for the feeder's tasks to end once stopped
_BLOCK_DEFERRED = 0.2
_RELEASE_EVERY = 0.1  # seconds between two release_deferred calls (a take may come sooner)
DEAD_AFTER = 3  # heartbeats missed before a consumer counts as dead


class Feeder:
    """One per process; ``consumer`` names this process to the store."""

    def __init__(self, *, store: StateStore, queue: WorkQueue, consumer: str, visibility: float,
                 heartbeat: float, on_reclaimed: Callable[[str, int], None] = lambda _w, _n: None) -> None:
        self._store = store
        self._queue = queue
        self.consumer = consumer
        self._visibility = visibility
        self._heartbeat = heartbeat
        self._on_reclaimed = on_reclaimed
        self._tasks: list[asyncio.Task[None]] = []
        self._touched_at = 0.0  # loop time of the last touch
        self._stopping = False
        self._released_at = -_RELEASE_EVERY  # loop time of the last release_deferred

    async def resume_orphans(self, *, idle: float) -> list[WorkItem]:
        """Take over every item other consumers hold idle for ``idle`` seconds (or whose heartbeat
        expired); queue them."""
        taken: list[WorkItem] = []
        while batch := await self._store.reclaim(self.consumer, idle=idle, count=_BATCH):
            taken.extend(await self._queue.put(batch))
        if taken:
            self._on_reclaimed("others", len(taken))
        return taken

    async def resume_own(self) -> list[WorkItem]:
        """Take up again this process's items that nothing here holds (untouched for 3 heartbeats)."""
        taken: list[WorkItem] = []
        while batch := await self._store.reclaim_own(self.consumer, held=self._queue.in_flight(),
                                                     idle=self._heartbeat * DEAD_AFTER, count=_BATCH):
            taken.extend(await self._queue.put(batch))
        if taken:
            self._on_reclaimed("own", len(taken))
        return taken

    async def beat(self) -> None:
        await self._store.heartbeat(self.consumer, ttl=self._heartbeat * DEAD_AFTER)

    def start(self) -> None:
        self._stopping = False
        self._tasks = [asyncio.create_task(self._feed(), name="remediator-feeder"),
                       asyncio.create_task(self._maintain(), name="remediator-feeder-maintain")]

    async def stop(self) -> None:
        """Stop taking work: the tasks end within ``_STOP_WITHIN`` (or are named in the log)."""
        self._stopping = True
        left = await stop_tasks(self._tasks, within=_STOP_WITHIN)
        if left:
            _log.error("feeder.stop_unfinished", tasks=[task.get_name() for task in left])
        self._tasks.clear()

    async def retire(self) -> None:
        """End this process's heartbeat now (it stops): what it leaves is taken over at once."""
        try:
            await self._store.heartbeat(self.consumer, ttl=0)
        except StateError as exc:  # it expires on its own within 3 heartbeats
            _log.warning("feeder.retire_failed", error=str(exc))

    async def _feed(self) -> None:
        waiting = 0
        while not self._stopping:
            await self._queue.wait_room()
            try:
                now = asyncio.get_running_loop().time()
                if now - self._released_at >= _RELEASE_EVERY:  # not a store call per take
                    _, waiting = await self._store.release_deferred(limit=_BATCH)
                    self._released_at = now
                items = await self._store.take(self.consumer, min(self._queue.free() or 1, _BATCH),
                                               block=_BLOCK_DEFERRED if waiting else _BLOCK)
            except StateError as exc:
                _log.warning("feeder.take_failed", error=str(exc))
                await asyncio.sleep(_BLOCK)
                continue
            except Exception:  # a bug must not stop the feeding; it is logged and retried
                _log.exception("feeder.crashed")
                await asyncio.sleep(_BLOCK)
                continue
            await self._queue.put(items)

    async def maintain_once(self) -> list[WorkItem]:
        """Beat; touch what this process holds (every visibility / 3); take over what others
        abandoned and take up again what nothing here holds."""
        await self.beat()
        now = asyncio.get_running_loop().time()
        if now - self._touched_at >= self._visibility / 3:
            held = self._queue.in_flight()
            if held:
                await self._store.touch(self.consumer, held)
            self._touched_at = now
        return await self.resume_orphans(idle=self._visibility) + await self.resume_own()

    async def _maintain(self) -> None:
        while not self._stopping:
            try:
                reclaimed = await self.maintain_once()
            except StateError as exc:
                _log.warning("feeder.maintain_failed", error=str(exc))
                reclaimed = []
            except Exception:  # a bug must not stop the touching; it is logged and retried
                _log.exception("feeder.crashed")
                reclaimed = []
            if reclaimed:
                _log.warning("feeder.reclaimed", items=len(reclaimed),
                             decisions=[i.id for i in reclaimed[:5]],
                             hint="a replica died or stopped working on these, or nothing here held them")
            await asyncio.sleep(self._heartbeat)
