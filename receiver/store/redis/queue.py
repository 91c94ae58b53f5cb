"""Dedup claims and the work queue of the Redis store: a stream read by one consumer group.

A part of ``receiver.store.redis.store.RedisStateStore``, which calls it for ``claim``,
``claimed``, ``release``, ``enqueue``, ``take``, ``reclaim``, ``touch``, ``complete`` and
``backlog`` (and to create the consumer group when it opens). Keys: ``dedup:K`` (the
claim's expiry), ``work`` (the stream, group ``{prefix}:workers``, trimmed as work
completes: no TTL) and ``work:touched`` (entry id -> clock time of the last take/touch).
Who holds an entry is the group's pending list; how long it has been idle is the
touched hash, in clock seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from receiver.errors import StateError
from receiver.store.redis.core import DAY, READ_TIMEOUT, RedisCore, gc_ms, num
from receiver.store.values import BacklogFull, WorkItem


def _item(ref: str, flat: Sequence[str], deliveries: int) -> WorkItem:
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return WorkItem(id=fields["id"], payload=json.loads(fields["payload"]),
                    dedup_key=fields.get("dedup_key"), ref=ref, deliveries=deliveries)


class RedisQueue:
    """Claims and work for every replica sharing ``core``'s Redis."""

    def __init__(self, core: RedisCore) -> None:
        self._core = core
        self._group = f"{core.prefix}:workers"
        self._stream = core.key("work")
        self._touched = core.key("work:touched")

    async def create_group(self) -> None:
        with self._core.errors():
            try:
                await self._core.conn().xgroup_create(self._stream, self._group, id="0", mkstream=True)
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise

    async def _run(self, name: str, args: Sequence[str | int]) -> Any:
        """Run a work-queue script; recreate the group once if Redis lost it (restart, flush)."""
        keys = [self._stream, self._touched]
        with self._core.errors():
            try:
                return await self._core.script(name)(keys=keys, args=[self._group, *args])
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
            await self.create_group()
            return await self._core.script(name)(keys=keys, args=[self._group, *args])

    # -- dedup
    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        if not keys:
            return []
        now = self._core.clock.now()
        with self._core.errors():
            won = await self._core.script("CLAIM")(keys=[self._core.key("dedup", k) for k in keys],
                                                   args=[num(now), num(now + ttl), gc_ms(ttl)])
        return [bool(w) for w in won]

    async def claimed(self, key: str) -> bool:
        with self._core.errors():
            held = await self._core.conn().get(self._core.key("dedup", key))
        return held is not None and float(held) > self._core.clock.now()

    async def release(self, keys: Sequence[str]) -> None:
        if keys:
            with self._core.errors():
                await self._core.conn().delete(*(self._core.key("dedup", k) for k in keys))

    # -- work
    async def enqueue(self, items: Sequence[WorkItem], *, ttl: float, max_backlog: int) -> None:
        if not items:
            return
        now = self._core.clock.now()
        args: list[str | int] = [max_backlog, num(now + ttl), gc_ms(ttl), len(items)]
        for item in items:
            args += [item.id, "0" if item.dedup_key is None else "1", item.dedup_key or "",
                     json.dumps(item.payload, separators=(",", ":"))]
        dedup = [self._core.key("dedup", i.dedup_key) for i in items if i.dedup_key is not None]
        with self._core.errors():
            added = await self._core.script("ENQUEUE")(keys=[self._stream, *dedup], args=args)
        if added == -1:
            raise BacklogFull(max_backlog)

    async def take(self, consumer: str, count: int, *, block: float) -> list[WorkItem]:
        if count <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block
        while True:
            found, data = await self._run("TAKE", [consumer, count, num(self._core.clock.now()), gc_ms(DAY)])
            if found:
                return [_item(ref, flat, 1) for ref, flat in data]
            left = deadline - loop.time()
            if left <= 0:
                return []
            await self._wait_for_work(after=data, seconds=left)

    async def _wait_for_work(self, *, after: str, seconds: float) -> None:
        """Wait (real time) until an entry newer than ``after`` arrives, or ``seconds`` pass."""
        blocking = self._core.blocking()
        with self._core.errors():
            try:
                async with asyncio.timeout(seconds + READ_TIMEOUT):
                    await blocking.xread({self._stream: after}, count=1, block=max(1, int(seconds * 1000)))
            except TimeoutError:
                raise StateError(f"redis state store {self._core.safe_url}: "
                                 "no answer while waiting for work") from None

    async def reclaim(self, consumer: str, *, idle: float, count: int) -> list[WorkItem]:
        if count <= 0:
            return []
        now = self._core.clock.now()
        claimed = await self._run("RECLAIM", [consumer, num(now), num(now - idle), count, gc_ms(DAY)])
        return [_item(ref, flat, int(deliveries)) for ref, deliveries, flat in claimed]

    async def touch(self, consumer: str, refs: Sequence[str]) -> None:
        if refs:
            await self._run("TOUCH", [consumer, num(self._core.clock.now()), gc_ms(DAY), *refs])

    async def complete(self, refs: Sequence[str]) -> None:
        if refs:
            with self._core.errors():
                async with self._core.conn().pipeline(transaction=True) as tx:
                    tx.xack(self._stream, self._group, *refs)
                    tx.xdel(self._stream, *refs)
                    tx.hdel(self._touched, *refs)
                    await tx.execute()

    async def backlog(self) -> int:
        with self._core.errors():
            return int(await self._core.conn().xlen(self._stream))
