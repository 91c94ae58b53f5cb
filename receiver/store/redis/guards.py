"""What the guards keep in the Redis store: the pause, budgets, circuit breakers, target locks.

A part of ``receiver.store.redis.store.RedisStateStore``, which calls it for the pause
(``get_pause``, ``set_pause``, ``clear_pause``), ``admit``, the circuit operations and
the lock operations. Keys, all tagged ``{PREFIX:guards}`` (one slot: the budget script
spends a cooldown, a rate window and the one blast-radius window at once; a lock takes its
token from the one fencing counter): ``pause`` (no TTL: a kill switch must not lift itself),
``cooldown:K`` (until, member), ``rate:K`` and ``blast`` (members scored by clock time),
``circuit:T``, ``lock:K`` and ``fence`` (one counter for every lock's tokens: strictly
increasing per key, never reset, one key however many targets; no TTL).
"""

from __future__ import annotations

import json

from receiver.store.redis.core import DAY, RedisCore, gc_ms, num
from receiver.store.values import Admission, Budget, Circuit, Pause, Verdict

_CIRCUIT_GC = 7 * DAY  # a failure count nobody added to for this long is forgotten


def _circuit(failures: str | None, open_until: str | None) -> Circuit:
    return Circuit(int(failures or 0), float(open_until) if open_until else None)


class RedisGuards:
    """Guard state shared by every replica on ``core``'s Redis; each check-and-spend one script."""

    def __init__(self, core: RedisCore) -> None:
        self._core = core

    def _key(self, *parts: str) -> str:
        return self._core.key("guards", *parts)

    # -- pause
    async def get_pause(self) -> Pause | None:
        with self._core.errors():
            body = await self._core.cmd("GET", self._key("pause"))
        return Pause.from_dict(json.loads(body)) if body is not None else None

    async def set_pause(self, pause: Pause) -> bool:
        body = json.dumps(pause.as_dict())
        with self._core.errors():
            return bool(await self._core.write("SET", self._key("pause"), body, "NX"))

    async def clear_pause(self) -> Pause | None:
        with self._core.errors():
            body = await self._core.write("GETDEL", self._key("pause"))
        return Pause.from_dict(json.loads(body)) if body is not None else None

    # -- budgets
    async def admit(self, budget: Budget, *, spend: bool) -> Admission:
        now = self._core.clock.now()
        cooling = budget.cooldown_key is not None
        rate = budget.rate_key is not None
        blast = budget.blast_max is not None
        keys = [self._key("cooldown", budget.cooldown_key or ""), self._key("rate", budget.rate_key or ""),
                self._key("blast")]
        args: list[str | int] = [
            num(now), int(spend), budget.member,
            int(cooling), int(cooling and budget.cooldown > 0), num(now + budget.cooldown),
            gc_ms(budget.cooldown),
            int(rate), budget.rate_max, num(now - budget.rate_window), gc_ms(budget.rate_window),
            int(blast), budget.blast_max or 0, num(now - budget.blast_window), gc_ms(budget.blast_window),
        ]
        with self._core.errors():
            verdict, at = await self._core.run("ADMIT", keys, args)
        if verdict == "ok":
            return Admission(Verdict.OK)
        if verdict == "cooldown":
            return Admission(Verdict.COOLDOWN, float(at) - now)
        window = budget.rate_window if verdict == "rate_limit" else budget.blast_window
        return Admission(Verdict(verdict), float(at) + window - now if at else None)

    # -- circuit breakers
    async def circuit(self, target: str) -> Circuit:
        with self._core.errors():
            failures, open_until = await self._core.cmd("HMGET", self._key("circuit", target),
                                                        "failures", "open_until")
        return _circuit(failures, open_until)

    async def record_result(self, target: str, *, ok: bool, threshold: int, cooloff: float) -> Circuit:
        key = self._key("circuit", target)
        if ok:
            with self._core.errors():
                await self._core.write("DEL", key)
            return Circuit()
        open_until = self._core.clock.now() + cooloff
        with self._core.errors():
            failures = int(await self._core.run("RECORD_FAILURE", [key],
                                                [threshold, num(open_until), gc_ms(cooloff + _CIRCUIT_GC)]))
        return Circuit(failures, open_until if failures >= threshold else None)

    async def reset_circuit(self, target: str) -> Circuit:
        with self._core.errors():
            failures, open_until = await self._core.run("RESET_CIRCUIT", [self._key("circuit", target)], [])
        return _circuit(failures, open_until)

    # -- target locks
    async def acquire_lock(self, key: str, owner: str, *, ttl: float, breaking: str | None) -> int | None:
        now = self._core.clock.now()
        with self._core.errors():
            token = await self._core.run("ACQUIRE_LOCK", [self._key("lock", key), self._key("fence")],
                                         [num(now), owner, num(now + ttl), gc_ms(ttl), breaking or ""])
        return int(token) if token is not None else None

    async def lock_valid(self, key: str, token: int) -> bool:
        with self._core.errors():
            owner, held, expires_at = await self._core.cmd("HMGET", self._key("lock", key), "owner",
                                                           "token", "expires_at")
        return owner is not None and held == str(token) and float(expires_at) > self._core.clock.now()

    async def release_lock(self, key: str, token: int) -> None:
        with self._core.errors():
            await self._core.run("RELEASE_LOCK", [self._key("lock", key)], [str(token)])
