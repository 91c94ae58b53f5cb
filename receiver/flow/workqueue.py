"""The local buffer between the feeder and the workers.

The feeder (``receiver.flow.feeder``) takes work from the state store's queue only as far as
this buffer has room, and workers (``receiver.flow.workers``) take it from here. Accepted
work is durable in the store, not here: what sits in this buffer when the process dies
is taken again at start-up (SQLite) or by another replica (Redis). An item a worker
finished stays held here until the completer (``receiver.flow.completer``) has removed it
from the store, but no longer takes a worker's place: the buffer's room is what waits or
is being worked on, so the workers go on while a batch of finished items waits for its
audit sync and its removal (up to ``FINISHED_SLACK`` buffers' worth of them; past that,
a store that does not confirm removals stops the taking too).
"""

from __future__ import annotations

import asyncio
from collections import deque

from receiver.store.values import WorkItem

# Buffers' worth of finished items awaiting removal before they take room. One: the
# completer's batch stays about a buffer (its removal is one store transaction on the event
# loop); 16 let batches of ~500 removals stall the loop (the storm's p99 ack 63 -> 226 ms).
FINISHED_SLACK = 1


class WorkQueue:
    """A FIFO of work items with a soft capacity the feeder respects.

    The feeder is woken once a quarter of the capacity is free (not for every item done), so
    it takes work from the store in batches: one store call per several items, while what
    is buffered keeps the workers busy.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._low = max(1, capacity // 4)  # free places that wake the feeder
        self._items: deque[WorkItem] = deque()
        self._ready = asyncio.Condition()
        self._in_flight: dict[str, WorkItem] = {}  # being worked on
        self._finished: dict[str, WorkItem] = {}  # finished, awaiting removal from the store
        self._slack = capacity * FINISHED_SLACK
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()

    @property
    def capacity(self) -> int:
        return self._capacity

    def depth(self) -> int:
        return len(self._items)

    @property
    def unfinished(self) -> int:
        """Items queued here, being worked on or finished and not yet removed from the store."""
        return len(self._items) + len(self._in_flight) + len(self._finished)

    def free(self) -> int:
        """Places for more work: finished items count only past the slack."""
        over = max(0, len(self._finished) - self._slack)
        return max(0, self._capacity - len(self._items) - len(self._in_flight) - over)

    def in_flight(self) -> list[str]:
        """Store refs of every item held here (queued, being worked on, or finished and not yet
        removed)."""
        return [i.ref for i in self._items] + list(self._in_flight) + list(self._finished)

    async def wait_room(self) -> None:
        await self._room.wait()

    async def put(self, items: list[WorkItem]) -> list[WorkItem]:
        """Queue ``items`` but those already held here (by ref); returns the ones queued."""
        held = set(self.in_flight())
        fresh: dict[str, WorkItem] = {}
        for item in items:
            if item.ref not in held:
                fresh.setdefault(item.ref, item)
        items = list(fresh.values())
        if not items:
            return items
        self._items.extend(items)
        self._idle.clear()
        if self.free() < self._low:
            self._room.clear()
        async with self._ready:
            self._ready.notify(len(items))
        return items

    async def get(self) -> WorkItem:
        async with self._ready:
            await self._ready.wait_for(lambda: bool(self._items))
            item = self._items.popleft()
        self._in_flight[item.ref] = item
        return item

    def finished(self, item: WorkItem) -> None:
        """An item taken with :meth:`get` was carried to its end: it stays held (touched, never
        taken up again) until :meth:`done`, but its place is free for more work."""
        if self._in_flight.pop(item.ref, None) is not None:
            self._finished[item.ref] = item
        self._room_check()

    def done(self, item: WorkItem) -> None:
        """An item taken with :meth:`get` is removed from the store (or abandoned to it)."""
        self._in_flight.pop(item.ref, None)
        self._finished.pop(item.ref, None)
        self._room_check()
        if self.unfinished == 0:
            self._idle.set()

    def _room_check(self) -> None:
        if self.free() >= self._low:
            self._room.set()

    async def requeue(self, item: WorkItem) -> None:
        """Put an item taken with :meth:`get` back at the end (it stays held by this process)."""
        self._in_flight.pop(item.ref, None)
        self._items.append(item)
        async with self._ready:
            self._ready.notify(1)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def drain_unstarted(self) -> list[WorkItem]:
        """Take every item no worker has started (at shutdown)."""
        items = list(self._items)
        self._items.clear()
        self._room.set()
        if self.unfinished == 0:
            self._idle.set()
        return items
