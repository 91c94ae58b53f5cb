"""Timers and occurrence counts of the Redis store (``receiver.store.protocol.StateStore``'s last part).

Mixed into ``receiver.store.redis.store.RedisStateStore``, which owns the connection, the key
prefix and the error handling; kept apart (with its Lua) so that file stays about queues
and guards. Keys: ``timer:ID`` (hash: kind, body, held_until, claims, done), ``timers``
(armed ids scored by the clock time they are next due: ``due_at``, or ``held_until``
while held, so "due and free" is one range query), ``timers:fp:FP`` (armed ids of one
alert), ``occ:KEY`` (members scored by clock time). A finished or taken timer leaves the
index and stays a tombstone until its ``expires_at`` (the key's TTL then removes it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from redis.commands.core import AsyncScript

from receiver.clock import Clock
from receiver.store.values import Timer

_EXTEND = """
local function extend(key, ms)
  local left = redis.call('PTTL', key)
  if left ~= -2 and left < tonumber(ms) then redis.call('PEXPIRE', key, ms) end
end
"""

PUT_TIMER = _EXTEND + """
-- KEYS: timer, index, fp set. ARGV: id, kind, due_at, body, gc_ms, now, expires_at.
local expires = redis.call('HGET', KEYS[1], 'expires_at')
if expires and tonumber(expires) > tonumber(ARGV[6]) then return 0 end
redis.call('HDEL', KEYS[1], 'held_until')
redis.call('HSET', KEYS[1], 'kind', ARGV[2], 'body', ARGV[4], 'claims', 0, 'done', 0, 'expires_at', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
extend(KEYS[3], ARGV[5])
return 1
"""

CLAIM_TIMERS = """
-- KEYS: index. ARGV: now, held_until, limit, timer key prefix. Returns {body, claims, ...}.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local body, done = unpack(redis.call('HMGET', key, 'body', 'done'))
  if body and done == '0' then
    redis.call('HSET', key, 'held_until', ARGV[2])
    local claims = redis.call('HINCRBY', key, 'claims', 1)
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    out[#out + 1] = body
    out[#out + 1] = claims
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

FINISH_TIMER = """
-- KEYS: timer, index. ARGV: id, fp set prefix.
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'done', 1)
  redis.call('HDEL', KEYS[1], 'held_until')
  local body = cjson.decode(redis.call('HGET', KEYS[1], 'body'))
  redis.call('SREM', ARGV[2] .. body['fingerprint'], ARGV[1])
end
return 1
"""

TAKE_TIMERS = """
-- KEYS: index, fp set. ARGV: now, timer key prefix, kinds...
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key = ARGV[2] .. id
  local kind, held, body, done, claims = unpack(redis.call('HMGET', key, 'kind', 'held_until', 'body', 'done',
                                                           'claims'))
  if not body or done ~= '0' then
    redis.call('SREM', KEYS[2], id)
  else
    local wanted = false
    for i = 3, #ARGV do
      if ARGV[i] == kind then wanted = true end
    end
    if wanted and (not held or tonumber(held) <= tonumber(ARGV[1])) then
      redis.call('HSET', key, 'done', 1)
      redis.call('ZREM', KEYS[1], id)
      redis.call('SREM', KEYS[2], id)
      out[#out + 1] = body
      out[#out + 1] = claims
    end
  end
end
return out
"""

COUNT_OCCURRENCE = """
-- KEYS: the set. ARGV: now, member, forget_before, gc_ms.
redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCARD', KEYS[1])
"""

SCRIPTS = ("PUT_TIMER", "CLAIM_TIMERS", "FINISH_TIMER", "TAKE_TIMERS", "COUNT_OCCURRENCE")
_DAY_MS = 86_400_000


def _num(value: float) -> str:
    return repr(float(value))


def _gc_ms(seconds: float) -> int:
    return int(max(seconds, 0.0) * 1000) + _DAY_MS


def _timers(flat: Sequence[Any]) -> list[Timer]:
    found = [Timer.from_dict(json.loads(body), claims=int(claims)) for body, claims in zip(
        flat[::2], flat[1::2], strict=True)]
    return sorted(found, key=lambda t: (t.due_at, t.id))


class RedisTimers:
    """The timer operations; the store provides ``_clock``, ``_key``, ``_script`` and ``_errors``."""

    _clock: Clock

    def _key(self, *parts: str) -> str:
        raise NotImplementedError

    def _script(self, name: str) -> AsyncScript:
        raise NotImplementedError

    def _errors(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    async def put_timer(self, timer: Timer) -> bool:
        keys = [self._key("timer", timer.id), self._key("timers"),
                self._key("timers", "fp", timer.fingerprint)]
        now = self._clock.now()
        args: list[str | int] = [timer.id, timer.kind, _num(timer.due_at), json.dumps(timer.as_dict()),
                                 _gc_ms(timer.expires_at - now), _num(now), _num(timer.expires_at)]
        with self._errors():
            return bool(await self._script("PUT_TIMER")(keys=keys, args=args))

    async def claim_due_timers(self, *, lease: float, limit: int) -> list[Timer]:
        now = self._clock.now()
        with self._errors():
            flat = await self._script("CLAIM_TIMERS")(
                keys=[self._key("timers")],
                args=[_num(now), _num(now + lease), limit, self._key("timer", "")])
        return _timers(flat)

    async def finish_timer(self, timer_id: str) -> None:
        with self._errors():
            await self._script("FINISH_TIMER")(keys=[self._key("timer", timer_id), self._key("timers")],
                                              args=[timer_id, self._key("timers", "fp", "")])

    async def take_timers(self, fingerprint: str, kinds: Sequence[str]) -> list[Timer]:
        if not kinds:
            return []
        with self._errors():
            flat = await self._script("TAKE_TIMERS")(
                keys=[self._key("timers"), self._key("timers", "fp", fingerprint)],
                args=[_num(self._clock.now()), self._key("timer", ""), *kinds])
        return _timers(flat)

    async def count_occurrence(self, key: str, member: str, *, window: float) -> int:
        now = self._clock.now()
        with self._errors():
            return int(await self._script("COUNT_OCCURRENCE")(
                keys=[self._key("occ", key)], args=[_num(now), member, _num(now - window), _gc_ms(window)]))
