"""Timers and occurrence counts in the Redis store (verify watches, escalation timers, the P2 policy).

A part of ``receiver.store.redis.store.RedisStateStore``, which calls it for ``put_timers``,
``claim_due_timers``, ``finish_timer``, ``take_timers`` and ``count_occurrence``; its Lua
is in ``receiver.store.redis.lua``. Keys, all tagged ``{PREFIX:timers}`` (one slot: a
script arms, claims or takes a timer and its indexes at once): ``timer:ID`` (hash: kind, body, held_until,
claims, done, expires_at), ``timers`` (armed ids scored by the clock time they are next
due: ``due_at``, or ``held_until`` while held, so "due and free" is one range query),
``timers:fp:FP`` (armed ids of one alert), ``occ:KEY`` (members scored by clock time). A
finished or taken timer leaves the index and stays a tombstone until its ``expires_at``
(the key's TTL then removes it).
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver import fastjson
from receiver.store.redis.core import RedisCore, gc_ms, num
from receiver.store.values import Timer, decode_timers


class RedisTimers:
    """Timers armed once per id and claimed by one replica at a time, on ``core``'s Redis."""

    def __init__(self, core: RedisCore) -> None:
        self._core = core

    def _key(self, *parts: str) -> str:
        return self._core.key("timers", *parts)

    async def put_timers(self, timers: Sequence[Timer]) -> list[bool]:
        if not timers:
            return []
        key = self._key
        now = self._core.clock.now()
        keys = [key("timers")]
        args: list[str | int] = [num(now)]
        for timer in timers:
            keys += [key("timer", timer.id), key("timers", "fp", timer.fingerprint)]
            args += [timer.id, timer.kind, num(timer.due_at), fastjson.dumps(timer.as_dict()),
                     gc_ms(timer.expires_at - now), num(timer.expires_at)]
        with self._core.errors():
            return [bool(armed) for armed in await self._core.run("PUT_TIMERS", keys, args)]

    async def claim_due_timers(self, *, lease: float, limit: int) -> list[Timer]:
        now = self._core.clock.now()
        with self._core.errors():
            flat = await self._core.run("CLAIM_TIMERS", [self._key("timers")],
                                        [num(now), num(now + lease), limit, self._key("timer", "")])
        return decode_timers(zip(flat[::2], flat[1::2], strict=True))

    async def finish_timer(self, timer_id: str) -> None:
        key = self._key
        with self._core.errors():
            await self._core.run("FINISH_TIMER", [key("timer", timer_id), key("timers")],
                                 [timer_id, key("timers", "fp", "")])

    async def take_timers(self, fingerprint: str, kinds: Sequence[str]) -> list[Timer]:
        if not kinds:
            return []
        with self._core.errors():
            flat = await self._core.run("TAKE_TIMERS",
                                        [self._key("timers"), self._key("timers", "fp", fingerprint)],
                                        [num(self._core.clock.now()), self._key("timer", ""), *kinds])
        return decode_timers(zip(flat[::2], flat[1::2], strict=True))

    async def count_occurrence(self, key: str, member: str, *, window: float) -> int:
        now = self._core.clock.now()
        with self._core.errors():
            return int(await self._core.run("COUNT_OCCURRENCE", [self._key("occ", key)],
                                            [num(now), member, num(now - window), gc_ms(window)]))
