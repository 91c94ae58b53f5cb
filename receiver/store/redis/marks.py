"""The execute-once markers of steps in the Redis store, in the queue part's slot.

A part of ``receiver.store.redis.store.RedisStateStore``, which calls it for
``step_mark`` and ``mark_step``. A marker is the hash ``{PREFIX:queue}:step:KEY`` (state,
holder, expires_at in clock seconds, body: the marker's JSON); it counts until its
``expires_at``, its Redis TTL only collects garbage. Every change is one script
(``MARK_STEP`` in ``receiver.store.redis.lua_queue``): read, compare, write at once.
"""

from __future__ import annotations

import json

from receiver.store.redis.core import RedisCore, gc_ms, num
from receiver.store.values import StepMark


def _mark(body: str | bytes | None) -> StepMark | None:
    if not body:
        return None
    return StepMark.from_dict(json.loads(body))


class RedisMarks:
    """Markers for every replica sharing ``core``'s Redis."""

    def __init__(self, core: RedisCore) -> None:
        self._core = core

    def _key(self, key: str) -> str:
        return self._core.key("queue", "step", key)

    async def step_mark(self, key: str) -> StepMark | None:
        with self._core.errors():
            body, expires_at = await self._core.cmd("HMGET", self._key(key), "body", "expires_at")
        if expires_at is None or float(expires_at) <= self._core.clock.now():
            return None
        return _mark(body)

    async def mark_step(self, key: str, mark: StepMark | None, *, ttl: float, if_absent: bool,
                        if_claimed: bool, if_holder: str | None) -> tuple[bool, StepMark | None]:
        now = self._core.clock.now()
        body = "" if mark is None else json.dumps(mark.as_dict(), separators=(",", ":"))
        args: list[str | int] = [
            num(now), "1" if if_absent else "0", "1" if if_claimed else "0", if_holder or "", body,
            "" if mark is None else mark.state.value, "" if mark is None else mark.holder,
            num(now + ttl), gc_ms(ttl)]
        with self._core.errors():
            done, there = await self._core.run("MARK_STEP", [self._key(key)], args)
        return bool(int(done)), _mark(there)
