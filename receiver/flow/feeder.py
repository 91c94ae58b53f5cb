"""The feeder: moves accepted work from the state store's queue into the local buffer.

Started and stopped by ``receiver.runtime``. It takes only as much as the workers have
room for, touches what this process holds so no other replica takes it over, and takes
over work another replica took and stopped touching for ``queue.visibility_timeout``.
At start-up it takes every item a previous process left unfinished (after a crash).
"""

from __future__ import annotations

import asyncio

import structlog

from receiver.errors import StateError
from receiver.flow.workqueue import WorkQueue
from receiver.store.protocol import StateStore
from receiver.store.values import WorkItem

_log = structlog.get_logger("remediator.feeder")
_BATCH = 256
_BLOCK = 1.0


class Feeder:
    """One per process; ``consumer`` names this process to the store."""

    def __init__(self, *, store: StateStore, queue: WorkQueue, consumer: str, visibility: float) -> None:
        self._store = store
        self._queue = queue
        self.consumer = consumer
        self._visibility = visibility
        self._tasks: list[asyncio.Task[None]] = []

    async def resume_orphans(self, *, idle: float) -> list[WorkItem]:
        """Take over every item other consumers hold idle for ``idle`` seconds; queue them."""
        taken: list[WorkItem] = []
        while batch := await self._store.reclaim(self.consumer, idle=idle, count=_BATCH):
            taken.extend(batch)
            await self._queue.put(batch)
        return taken

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._feed(), name="remediator-feeder"),
                       asyncio.create_task(self._maintain(), name="remediator-feeder-maintain")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _feed(self) -> None:
        while True:
            await self._queue.wait_room()
            try:
                items = await self._store.take(self.consumer, min(self._queue.free() or 1, _BATCH),
                                               block=_BLOCK)
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
        """Touch what this process holds; take over what others abandoned."""
        held = self._queue.in_flight()
        if held:
            await self._store.touch(self.consumer, held)
        return await self.resume_orphans(idle=self._visibility)

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._visibility / 3)
            try:
                reclaimed = await self.maintain_once()
            except StateError as exc:
                _log.warning("feeder.maintain_failed", error=str(exc))
                continue
            except Exception:  # a bug must not stop the touching; it is logged and retried
                _log.exception("feeder.crashed")
                continue
            if reclaimed:
                _log.warning("feeder.reclaimed", items=len(reclaimed),
                             hint="another replica stopped working on these")
