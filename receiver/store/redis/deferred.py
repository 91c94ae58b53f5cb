"""Deferred work in the Redis store: sorted sets and a hash beside the work stream.

A part of ``receiver.store.redis.store.RedisStateStore``, which calls it for ``defer``,
``wake_deferred``, ``release_deferred``, ``deferred_count`` and ``deferred``. Keys, tagged ``{PREFIX:queue}``
like the stream (one slot: one script moves an item between the stream and the deferred
keys): ``deferred`` (decision id -> not_before, clock seconds), ``deferred:items``
(decision id -> its dedup key, payload and wake member) and ``deferred:wake`` (members
``WAKE NUL RANK NUL id``, all scored 0, so that a range by name finds what waits for one
lock or circuit, lowest rank first). A decision an open circuit or a held target lock
stopped (``receiver.flow.deferral``) leaves the stream for them (``DEFER``);
``release_deferred`` (every replica's feeder, before each take) queues the due ones again
(``RELEASE_DEFERRED``), one replica each; ``wake_deferred`` makes what waits for a lock or
circuit due now (``WAKE_DEFERRED``). No key has a TTL: like the stream, they hold accepted
work.
"""

from __future__ import annotations

import json

from receiver.store.redis.core import RedisCore, num
from receiver.store.values import WorkItem


class RedisDeferred:
    """Deferred items for every replica sharing ``core``'s Redis."""

    def __init__(self, core: RedisCore) -> None:
        self._core = core
        self._group = f"{core.prefix}:workers"
        self._stream = core.key("queue", "work")
        self._touched = core.key("queue", "work", "touched")
        self._due = core.key("queue", "deferred")
        self._items = core.key("queue", "deferred", "items")
        self._wake = core.key("queue", "deferred", "wake")

    async def defer(self, ref: str, item: WorkItem, *, not_before: float, wake: str | None = None,
                    rank: float = 0.0) -> bool:
        member = "" if wake is None else f"{wake}\x00{rank:020.6f}\x00{item.id}"
        body = json.dumps({"k": item.dedup_key if item.dedup_key is not None else False,
                           "p": json.dumps(item.payload, separators=(",", ":")), "w": member or False},
                          separators=(",", ":"))
        with self._core.errors():
            kept = await self._core.run("DEFER",
                                        [self._stream, self._touched, self._due, self._items, self._wake],
                                        [self._group, ref, item.id, body, num(not_before), member])
        return bool(kept)

    async def wake_deferred(self, wake: str, *, count: int) -> int:
        with self._core.errors():
            woken = await self._core.run("WAKE_DEFERRED", [self._due, self._items, self._wake],
                                         [num(self._core.clock.now()), f"{wake}\x00", f"{wake}\x01", count])
        return int(woken)

    async def release_deferred(self, *, limit: int) -> tuple[int, int]:
        with self._core.errors():
            moved, waiting = await self._core.run("RELEASE_DEFERRED",
                                                  [self._stream, self._due, self._items, self._wake],
                                                  [num(self._core.clock.now()), limit])
        return int(moved), int(waiting)

    async def deferred_count(self) -> int:
        with self._core.errors():
            return int(await self._core.cmd("ZCARD", self._due))

    async def deferred(self) -> list[tuple[WorkItem, float]]:
        with self._core.errors():
            due, bodies = await self._core.reads([("ZRANGE", self._due, "0", "-1", "WITHSCORES"),
                                                  ("HGETALL", self._items)])
        pairs = [tuple(e) for e in due] if due and isinstance(due[0], (list, tuple)) \
            else list(zip(due[::2], due[1::2], strict=True))
        out = []
        for item_id, score in pairs:
            data = json.loads(bodies[item_id])
            key = data["k"] if isinstance(data["k"], str) else None
            out.append((WorkItem(id=item_id, dedup_key=key, payload=json.loads(data["p"])), float(score)))
        return out
