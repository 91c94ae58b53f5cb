"""The bounded queue between intake and the workers, with reservations.

Intake (``receiver.intake``) reserves room before it claims dedup keys and writes the
audit, then puts the decisions; so a request either queues all its work or none of it,
and a full queue is a 503 that Alertmanager answers by sending again.
"""

from __future__ import annotations

import asyncio
from collections import deque

from receiver.decisions import Decision


class WorkQueue:
    """A FIFO of decisions with a hard capacity (queued + reserved <= capacity)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: deque[Decision] = deque()
        self._reserved = 0
        self._ready = asyncio.Condition()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def capacity(self) -> int:
        return self._capacity

    def depth(self) -> int:
        return len(self._items)

    @property
    def unfinished(self) -> int:
        """Decisions queued or being worked on."""
        return self._unfinished

    def reserve(self, n: int) -> bool:
        """Hold room for ``n`` decisions; False when there is not enough."""
        if len(self._items) + self._reserved + n > self._capacity:
            return False
        self._reserved += n
        return True

    def unreserve(self, n: int) -> None:
        self._reserved -= n

    async def put_reserved(self, items: list[Decision]) -> None:
        """Queue decisions room was reserved for."""
        self._reserved -= len(items)
        if not items:
            return
        self._items.extend(items)
        self._unfinished += len(items)
        self._idle.clear()
        async with self._ready:
            self._ready.notify(len(items))

    async def get(self) -> Decision:
        async with self._ready:
            await self._ready.wait_for(lambda: bool(self._items))
            return self._items.popleft()

    def done(self) -> None:
        """A decision taken with :meth:`get` is finished."""
        self._unfinished -= 1
        if self._unfinished == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def drain_unstarted(self) -> list[Decision]:
        """Take every decision no worker has started (at shutdown)."""
        items = list(self._items)
        self._items.clear()
        self._unfinished -= len(items)
        if self._unfinished == 0:
            self._idle.set()
        return items
