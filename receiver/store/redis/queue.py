"""Dedup claims and the work queue of the Redis store: a stream read by one consumer group.

A part of ``receiver.store.redis.store.RedisStateStore``, which calls it for ``claim``,
``claimed``, ``release``, ``claim_and_enqueue``, ``enqueue``, ``take``, ``reclaim``,
``reclaim_own``, ``heartbeat``, ``touch``, ``complete`` and ``backlog`` (and to create the
consumer group when it opens).
Keys, all tagged ``{PREFIX:queue}`` (one slot: one script claims a request's dedup keys
and queues its work at once, ``CLAIM_ENQUEUE`` in ``receiver.store.redis.lua_queue``):
``dedup:K`` (the claim's expiry), ``work`` (the stream, group ``PREFIX:workers``, trimmed
as work completes: no TTL), ``work:touched`` (entry id -> clock time of the last
take/touch) and ``consumers`` (consumer name -> clock time its heartbeat lasts until).
Who holds an entry is the group's pending list; how long it has been idle is the
touched hash, in clock seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError, TimeoutError

from receiver import fastjson
from receiver.errors import StateError
from receiver.store.redis.core import DAY, READ_TIMEOUT, NotReplicated, RedisCore, gc_ms, num
from receiver.store.values import BacklogFull, WorkItem

GIVE_BACK = 5.0  # seconds an undo (a claim given back, a release) is tried through a failover


def _item(ref: str, flat: Sequence[str], deliveries: int) -> WorkItem:
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return WorkItem(id=fields["id"], payload=fastjson.loads(fields["payload"]),
                    dedup_key=fields.get("dedup_key"), ref=ref, deliveries=deliveries)


def _maybe_ran(failed: Exception) -> bool:
    """Whether a failed command may have run: not when no connection was made (or no master found)."""
    if isinstance(failed, (MasterNotFoundError, AuthenticationError)):
        return False
    return "connecting to" not in str(failed)


class RedisQueue:
    """Claims and work for every replica sharing ``core``'s Redis."""

    def __init__(self, core: RedisCore) -> None:
        self._core = core
        self._group = f"{core.prefix}:workers"
        self._stream = core.key("queue", "work")
        self._touched = core.key("queue", "work", "touched")
        self._consumers = core.key("queue", "consumers")

    async def create_group(self) -> None:
        with self._core.errors():
            try:
                await self._core.write("XGROUP", "CREATE", self._stream, self._group, "0", "MKSTREAM")
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _run(self, name: str, args: Sequence[str | int]) -> Any:
        """Run a work-queue script; recreate the group once if Redis lost it (restart, flush)."""
        keys = [self._stream, self._touched, self._consumers]
        with self._core.errors():
            try:
                return await self._core.run(name, keys, [self._group, *args])
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
            await self.create_group()
            return await self._core.run(name, keys, [self._group, *args])

    def _dedup(self, key: str) -> str:
        return self._core.key("queue", "dedup", key)

    # -- dedup
    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        if not keys:
            return []
        now = self._core.clock.now()
        names, value = [self._dedup(k) for k in keys], num(now + ttl)
        with self._core.errors():
            try:
                won = await self._core.run("CLAIM", names, [num(now), value, gc_ms(ttl)])
            except (NotReplicated, ConnectionError, TimeoutError) as failed:
                if _maybe_ran(failed):
                    with contextlib.suppress(StateError):
                        await self._through_failover("UNCLAIM", names, [value])
                raise
        return [bool(w) for w in won]

    async def _through_failover(self, script: str, keys: Sequence[str], args: Sequence[str]) -> None:
        """Run an idempotent undo until a master runs it: tried again while none answers (one killed,
        the sentinels not yet agreed on the next) for up to ``GIVE_BACK`` seconds, then StateError. An
        undo that ran on a master is done, replicated or not. Used to give back a claim whose outcome
        is unknown (no reply, or no replica confirmed it) before its caller hears it failed (only keys
        still holding that claim's own value: never another claimant's), and for ``release``: a claim
        left behind would take the resend for a duplicate, or a step for one already started."""
        loop = asyncio.get_running_loop()
        end = loop.time() + GIVE_BACK
        while True:
            try:
                with self._core.errors():
                    await self._core.run(script, keys, args)
                return
            except NotReplicated:
                return
            except StateError:
                if loop.time() >= end:
                    raise
            await asyncio.sleep(0.2)

    async def _drop_entries(self, refs: Sequence[str]) -> None:
        """Best effort: delete queued entries no replica confirmed (``NotReplicated``)."""
        if refs:
            with contextlib.suppress(StateError, RedisError):
                await self._core.write("XDEL", self._stream, *refs)

    async def claimed(self, key: str) -> bool:
        with self._core.errors():
            held = await self._core.cmd("GET", self._dedup(key))
        return held is not None and float(held) > self._core.clock.now()

    async def release(self, keys: Sequence[str]) -> None:
        if keys:
            await self._through_failover("RELEASE", [self._dedup(k) for k in keys], [])

    # -- work
    async def claim_and_enqueue(self, items: Sequence[WorkItem], *, ttl: float,
                                max_backlog: int) -> list[bool]:
        if not items:
            return []
        now = self._core.clock.now()
        value = num(now + ttl)
        keys = list(dict.fromkeys(i.dedup_key for i in items if i.dedup_key is not None))
        index = {key: n for n, key in enumerate(keys, start=2)}
        args: list[str | int] = [num(now), value, gc_ms(ttl), max_backlog, len(items)]
        for item in items:
            args += [item.id, index.get(item.dedup_key, 0) if item.dedup_key is not None else 0,
                     item.dedup_key or "", fastjson.dumps(item.payload)]
        names = [self._dedup(k) for k in keys]
        with self._core.errors():
            try:
                added = await self._core.run("CLAIM_ENQUEUE", [self._stream, *names], args)
            except NotReplicated as unsure:  # undone (a resend is then new), or left whole: never half
                if unsure.result != -1:
                    mine = [self._dedup(i.dedup_key) for i, ref in zip(items, unsure.result, strict=True)
                            if ref and i.dedup_key is not None]
                    with contextlib.suppress(StateError):
                        await self._through_failover("UNQUEUE", [self._stream, *mine],
                                                     [value, *(ref for ref in unsure.result if ref)])
                raise
        if added == -1:
            raise BacklogFull(max_backlog)
        return [bool(ref) for ref in added]

    async def enqueue(self, items: Sequence[WorkItem], *, ttl: float, max_backlog: int) -> None:
        if not items:
            return
        now = self._core.clock.now()
        args: list[str | int] = [max_backlog, num(now + ttl), gc_ms(ttl), len(items)]
        for item in items:
            args += [item.id, "0" if item.dedup_key is None else "1", item.dedup_key or "",
                     fastjson.dumps(item.payload)]
        args.append(num(now))
        dedup = [self._dedup(i.dedup_key) for i in items if i.dedup_key is not None]
        with self._core.errors():
            try:
                added = await self._core.run("ENQUEUE", [self._stream, *dedup], args)
            except NotReplicated as unsure:  # deleted: the caller answers 503 and the work is resent
                await self._drop_entries(unsure.result if unsure.result != -1 else [])
                raise
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

    async def reclaim_own(self, consumer: str, *, held: Sequence[str], idle: float,
                          count: int) -> list[WorkItem]:
        if count <= 0:
            return []
        now = self._core.clock.now()
        claimed = await self._run("RECLAIM_OWN", [consumer, num(now), num(now - idle), count, gc_ms(DAY),
                                                  *held])
        return [_item(ref, flat, int(deliveries)) for ref, deliveries, flat in claimed]

    async def heartbeat(self, consumer: str, *, ttl: float) -> None:
        now = self._core.clock.now()
        await self._run("HEARTBEAT", [consumer, num(now + ttl), num(now - DAY), gc_ms(DAY + ttl)])

    async def touch(self, consumer: str, refs: Sequence[str]) -> None:
        if refs:
            await self._run("TOUCH", [consumer, num(self._core.clock.now()), gc_ms(DAY), *refs])

    async def complete(self, refs: Sequence[str]) -> None:
        if refs:
            with self._core.errors():
                await self._core.run("COMPLETE", [self._stream, self._touched], [self._group, *refs])

    async def backlog(self) -> int:
        with self._core.errors():
            return int(await self._core.cmd("XLEN", self._stream))

    async def oldest_work(self) -> float | None:
        with self._core.errors():
            first = await self._core.cmd("XRANGE", self._stream, "-", "+", "COUNT", "1")
        if not first:
            return None
        at = first[0][1].get("at")  # entries enqueued before `at` was kept have none
        return None if at is None else float(at)
