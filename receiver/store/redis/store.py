"""The shared state store for several replicas: one Redis, every read-modify-write atomic.

Built by ``receiver.store.connect.open_store`` for ``state: redis://…`` (or ``rediss://``,
``unix://``). Times come from the injected clock and are stored in values and scores;
Redis TTLs only collect garbage (the logical TTL plus at least a day), so the logic
never depends on them. Every key lives under ``{prefix}:``; the Lua scripts are in
``receiver.store.redis.lua``. Needs one Redis (not a cluster): scripts touch several keys.

Keys: ``dedup:K`` (expiry), ``work`` (stream, group ``{prefix}:workers``),
``work:touched`` (entry id -> clock time of the last take/touch), ``pause``,
``cooldown:K`` (until, member), ``rate:K`` and ``blast`` (members scored by clock time),
``circuit:T``, ``lock:K`` and ``fence`` (one counter for every lock's tokens: strictly
increasing per key, never reset, one key however many targets), ``approval:ID``,
``approvals`` (ids by created_at) and ``approvals:pending:FP`` (pending ids); timers
and occurrence counts are described in ``receiver.store.redis.timers``.
The stream, the fence counter and the pause have no TTL: the stream is trimmed as work
completes, the counter must never reset and a kill switch must not lift itself.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from receiver.clock import Clock
from receiver.errors import StateError
from receiver.store.redis import lua
from receiver.store.redis import timers as state_redis_timers
from receiver.store.values import (
    Admission,
    Approval,
    ApprovalStatus,
    BacklogFull,
    Budget,
    Circuit,
    Pause,
    Transition,
    Verdict,
    WorkItem,
)

_CONNECT_TIMEOUT = 3.0
_READ_TIMEOUT = 5.0
_DAY = 86_400.0
_KEEP_DECIDED = 7 * _DAY  # decided approvals stay listable this long
_CIRCUIT_GC = 7 * _DAY  # a failure count nobody added to for this long is forgotten
_USERINFO_PASSWORD = re.compile(r"(?<=://)([^:@/]*):[^@]*@")
_QUERY_PASSWORD = re.compile(r"(password=)[^&]*")


def _num(value: float) -> str:
    """A float as Lua's ``tonumber`` reads it back exactly."""
    return repr(float(value))


def _gc_ms(seconds: float) -> int:
    """Milliseconds of garbage-collection TTL for a key whose logic needs it ``seconds`` more.

    The logical TTL plus a day (at least a day), never less: the key is how the store
    remembers a cooldown, a window, a tombstone, so one that went before its logical time
    would lift them early. Not capped: the longest duration a rule or setting can give
    (about 292 years) is far inside what Redis accepts.
    """
    return int((max(seconds, 0.0) + _DAY) * 1000)


def _secrets_of(url: str) -> list[str]:
    """The password of a URL (user info or ``password=`` query), raw and unquoted, longest first."""
    parts = urlsplit(url)
    found = {parts.password or ""} | {v for k, v in parse_qsl(parts.query) if k == "password"}
    found |= {unquote(s) for s in found}
    return sorted((s for s in found if s), key=len, reverse=True)


def _fields(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _item(ref: str, flat: Sequence[str], deliveries: int) -> WorkItem:
    fields = _fields(flat)
    return WorkItem(id=fields["id"], payload=json.loads(fields["payload"]),
                    dedup_key=fields.get("dedup_key"), ref=ref, deliveries=deliveries)


def _approval(status: str, body: str, decision: str | None) -> Approval:
    data = {**json.loads(body), "status": status}
    if decision:
        data.update(json.loads(decision))
    return Approval.from_dict(data)


class RedisStateStore(state_redis_timers.RedisTimers):
    """Implements ``receiver.store.protocol.StateStore`` on Redis, shared by every replica."""

    def __init__(self, url: str, *, clock: Clock, prefix: str) -> None:
        self._url = url
        self._secrets = _secrets_of(url)
        self._safe_url = self._redact(_QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1:***@", url)))
        self._clock = clock
        self._prefix = prefix
        self._group = f"{prefix}:workers"
        self._stream = self._key("work")
        self._touched = self._key("work:touched")
        self._client: aioredis.Redis | None = None
        self._blocking: aioredis.Redis | None = None  # blocked waits for work do not hold up commands
        self._scripts: dict[str, AsyncScript] = {}

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    # -- connections and errors
    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Any Redis failure becomes StateError, without the URL's password."""
        try:
            yield
        except RedisError as exc:
            detail = self._redact(str(exc) or type(exc).__name__)
            raise StateError(f"redis state store {self._safe_url}: {detail}") from None

    def _conn(self) -> aioredis.Redis:
        if self._client is None:
            raise StateError("the state store is not open")
        return self._client

    async def _cmd(self, *args: str) -> Any:
        """One command (redis-py's typed wrappers do not type-check under ``await``)."""
        return await self._conn().execute_command(*args)  # type: ignore[no-untyped-call]

    def _script(self, name: str) -> AsyncScript:
        self._conn()
        return self._scripts[name]

    async def open(self) -> None:
        if self._client is not None:
            return
        options: dict[str, Any] = {
            "decode_responses": True, "socket_connect_timeout": _CONNECT_TIMEOUT,
            # No automatic retries: a retried claim or enqueue whose first try did run
            # would answer "already claimed" or queue the work twice.
            "retry": Retry(NoBackoff(), 0),
        }
        try:
            self._client = aioredis.from_url(self._url, socket_timeout=_READ_TIMEOUT, **options)
            self._blocking = aioredis.from_url(self._url, socket_timeout=None, **options)
        except ValueError as exc:
            raise StateError(f"invalid redis state URL {self._safe_url}: "
                             f"{self._redact(str(exc))}") from None
        self._scripts = {name: self._client.register_script(getattr(lua, name)) for name in (
            "CLAIM", "ENQUEUE", "TAKE", "RECLAIM", "TOUCH", "ADMIT", "RECORD_FAILURE", "ACQUIRE_LOCK",
            "RELEASE_LOCK", "PUT_APPROVAL", "DECIDE_APPROVAL")}
        self._scripts |= {name: self._client.register_script(getattr(state_redis_timers, name))
                          for name in state_redis_timers.SCRIPTS}
        await self._create_group()

    async def _create_group(self) -> None:
        with self._errors():
            try:
                await self._conn().xgroup_create(self._stream, self._group, id="0", mkstream=True)
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise

    async def _queue_script(self, name: str, args: Sequence[str | int]) -> Any:
        """Run a work-queue script; recreate the group once if Redis lost it (restart, flush)."""
        keys = [self._stream, self._touched]
        with self._errors():
            try:
                return await self._script(name)(keys=keys, args=[self._group, *args])
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
            await self._create_group()
            return await self._script(name)(keys=keys, args=[self._group, *args])

    async def close(self) -> None:
        for client in (self._client, self._blocking):
            if client is not None:
                await client.aclose()
        self._client = self._blocking = None

    async def ping(self) -> None:
        with self._errors():
            await self._cmd("PING")

    # -- dedup
    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        if not keys:
            return []
        now = self._clock.now()
        with self._errors():
            won = await self._script("CLAIM")(keys=[self._key("dedup", k) for k in keys],
                                              args=[_num(now), _num(now + ttl), _gc_ms(ttl)])
        return [bool(w) for w in won]

    async def claimed(self, key: str) -> bool:
        with self._errors():
            held = await self._conn().get(self._key("dedup", key))
        return held is not None and float(held) > self._clock.now()

    async def release(self, keys: Sequence[str]) -> None:
        if keys:
            with self._errors():
                await self._conn().delete(*(self._key("dedup", k) for k in keys))

    # -- work queue
    async def enqueue(self, items: Sequence[WorkItem], *, ttl: float, max_backlog: int) -> None:
        if not items:
            return
        now = self._clock.now()
        args: list[str | int] = [max_backlog, _num(now + ttl), _gc_ms(ttl), len(items)]
        for item in items:
            args += [item.id, "0" if item.dedup_key is None else "1", item.dedup_key or "",
                     json.dumps(item.payload, separators=(",", ":"))]
        dedup = [self._key("dedup", i.dedup_key) for i in items if i.dedup_key is not None]
        with self._errors():
            added = await self._script("ENQUEUE")(keys=[self._stream, *dedup], args=args)
        if added == -1:
            raise BacklogFull(max_backlog)

    async def take(self, consumer: str, count: int, *, block: float) -> list[WorkItem]:
        if count <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block
        while True:
            found, data = await self._queue_script(
                "TAKE", [consumer, count, _num(self._clock.now()), _gc_ms(_DAY)])
            if found:
                return [_item(ref, flat, 1) for ref, flat in data]
            left = deadline - loop.time()
            if left <= 0:
                return []
            await self._wait_for_work(after=data, seconds=left)

    async def _wait_for_work(self, *, after: str, seconds: float) -> None:
        """Wait (real time) until an entry newer than ``after`` arrives, or ``seconds`` pass."""
        if self._blocking is None:
            raise StateError("the state store is not open")
        with self._errors():
            try:
                async with asyncio.timeout(seconds + _READ_TIMEOUT):
                    await self._blocking.xread({self._stream: after}, count=1,
                                               block=max(1, int(seconds * 1000)))
            except TimeoutError:
                raise StateError(f"redis state store {self._safe_url}: "
                                 "no answer while waiting for work") from None

    async def reclaim(self, consumer: str, *, idle: float, count: int) -> list[WorkItem]:
        if count <= 0:
            return []
        now = self._clock.now()
        claimed = await self._queue_script(
            "RECLAIM", [consumer, _num(now), _num(now - idle), count, _gc_ms(_DAY)])
        return [_item(ref, flat, int(deliveries)) for ref, deliveries, flat in claimed]

    async def touch(self, consumer: str, refs: Sequence[str]) -> None:
        if refs:
            await self._queue_script("TOUCH", [consumer, _num(self._clock.now()), _gc_ms(_DAY), *refs])

    async def complete(self, refs: Sequence[str]) -> None:
        if refs:
            with self._errors():
                async with self._conn().pipeline(transaction=True) as tx:
                    tx.xack(self._stream, self._group, *refs)
                    tx.xdel(self._stream, *refs)
                    tx.hdel(self._touched, *refs)
                    await tx.execute()

    async def backlog(self) -> int:
        with self._errors():
            return int(await self._conn().xlen(self._stream))

    # -- pause
    async def get_pause(self) -> Pause | None:
        with self._errors():
            body = await self._conn().get(self._key("pause"))
        return Pause(**json.loads(body)) if body is not None else None

    async def set_pause(self, pause: Pause) -> bool:
        body = json.dumps({"source": pause.source, "actor": pause.actor, "detail": pause.detail,
                           "since": pause.since})
        with self._errors():
            return bool(await self._conn().set(self._key("pause"), body, nx=True))

    async def clear_pause(self) -> Pause | None:
        with self._errors():
            body = await self._conn().getdel(self._key("pause"))
        return Pause(**json.loads(body)) if body is not None else None

    # -- budgets
    async def admit(self, budget: Budget, *, spend: bool) -> Admission:
        now = self._clock.now()
        cooling = budget.cooldown_key is not None
        rate = budget.rate_key is not None
        blast = budget.blast_max is not None
        keys = [self._key("cooldown", budget.cooldown_key or ""), self._key("rate", budget.rate_key or ""),
                self._key("blast")]
        args: list[str | int] = [
            _num(now), int(spend), budget.member,
            int(cooling), int(cooling and budget.cooldown > 0), _num(now + budget.cooldown),
            _gc_ms(budget.cooldown),
            int(rate), budget.rate_max, _num(now - budget.rate_window), _gc_ms(budget.rate_window),
            int(blast), budget.blast_max or 0, _num(now - budget.blast_window), _gc_ms(budget.blast_window),
        ]
        with self._errors():
            verdict, at = await self._script("ADMIT")(keys=keys, args=args)
        if verdict == "ok":
            return Admission(Verdict.OK)
        if verdict == "cooldown":
            return Admission(Verdict.COOLDOWN, float(at) - now)
        window = budget.rate_window if verdict == "rate_limit" else budget.blast_window
        return Admission(Verdict(verdict), float(at) + window - now if at else None)

    # -- circuit breakers
    async def circuit(self, target: str) -> Circuit:
        with self._errors():
            failures, open_until = await self._cmd("HMGET", self._key("circuit", target), "failures",
                                                    "open_until")
        return Circuit(int(failures or 0), float(open_until) if open_until else None)

    async def record_result(self, target: str, *, ok: bool, threshold: int, cooloff: float) -> Circuit:
        key = self._key("circuit", target)
        if ok:
            with self._errors():
                await self._conn().delete(key)
            return Circuit()
        open_until = self._clock.now() + cooloff
        with self._errors():
            failures = int(await self._script("RECORD_FAILURE")(
                keys=[key], args=[threshold, _num(open_until), _gc_ms(cooloff + _CIRCUIT_GC)]))
        return Circuit(failures, open_until if failures >= threshold else None)

    async def reset_circuit(self, target: str) -> Circuit:
        key = self._key("circuit", target)
        with self._errors():
            async with self._conn().pipeline(transaction=True) as tx:
                tx.hmget(key, ["failures", "open_until"])
                tx.delete(key)
                (failures, open_until), _ = await tx.execute()
        return Circuit(int(failures or 0), float(open_until) if open_until else None)

    # -- locks
    async def acquire_lock(self, key: str, owner: str, *, ttl: float) -> int | None:
        now = self._clock.now()
        with self._errors():
            token = await self._script("ACQUIRE_LOCK")(
                keys=[self._key("lock", key), self._key("fence")],
                args=[_num(now), owner, _num(now + ttl), _gc_ms(ttl)])
        return int(token) if token is not None else None

    async def lock_valid(self, key: str, token: int) -> bool:
        with self._errors():
            owner, held, expires_at = await self._cmd("HMGET", self._key("lock", key), "owner", "token",
                                                       "expires_at")
        return owner is not None and held == str(token) and float(expires_at) > self._clock.now()

    async def release_lock(self, key: str, token: int) -> None:
        with self._errors():
            await self._script("RELEASE_LOCK")(keys=[self._key("lock", key)], args=[str(token)])

    # -- approvals
    async def put_approval(self, approval: Approval) -> None:
        gc = _gc_ms(approval.expires_at - self._clock.now() + _KEEP_DECIDED)
        keys = [self._key("approval", approval.id), self._key("approvals"),
                self._key("approvals", "pending", approval.fingerprint)]
        args = [approval.id, approval.status.value, _num(approval.created_at), _num(approval.expires_at),
                approval.fingerprint, json.dumps(approval.as_dict()), gc, self._key("approval", "")]
        with self._errors():
            added = await self._script("PUT_APPROVAL")(keys=keys, args=args)
        if not added:
            raise StateError(f"approval {approval.id} exists already")

    async def get_approval(self, approval_id: str) -> Approval | None:
        with self._errors():
            status, body, decision = await self._cmd("HMGET", self._key("approval", approval_id),
                                                     "status", "body", "decision")
        return _approval(status, body, decision) if status is not None else None

    async def _approvals(self, ids: Sequence[str]) -> tuple[list[Approval], list[str]]:
        """The records of ``ids``, and the ids whose record is gone."""
        with self._errors():
            async with self._conn().pipeline(transaction=False) as pipe:
                for approval_id in ids:
                    pipe.hmget(self._key("approval", approval_id), ["status", "body", "decision"])
                rows = await pipe.execute()
        found = [_approval(*row) for row in rows if row[0] is not None]
        gone = [approval_id for approval_id, row in zip(ids, rows, strict=True) if row[0] is None]
        return found, gone

    async def list_approvals(self, statuses: Sequence[ApprovalStatus] | None = None) -> list[Approval]:
        index = self._key("approvals")
        with self._errors():
            ids = await self._conn().zrange(index, 0, -1)
        found, gone = await self._approvals(ids)
        if gone:
            with self._errors():
                await self._cmd("ZREM", index, *gone)
        wanted = set(ApprovalStatus) if statuses is None else set(statuses)
        return sorted((a for a in found if a.status in wanted), key=lambda a: (-a.created_at, a.id))

    async def decide_approval(self, approval_id: str, to: ApprovalStatus, *, actor: str,
                              comment: str | None) -> Transition:
        now = self._clock.now()
        moved = json.dumps({"decided_by": actor, "decided_at": now, "comment": comment})
        expired = json.dumps({"decided_by": "system", "decided_at": now, "comment": None})
        args = [_num(now), to.value, moved, expired, _gc_ms(_KEEP_DECIDED),
                self._key("approvals", "pending", ""), approval_id]
        with self._errors():
            result = await self._script("DECIDE_APPROVAL")(
                keys=[self._key("approval", approval_id), self._key("approvals")], args=args)
        if not result[0]:
            return Transition(None, changed=False)
        _, changed, status, body, decision = result
        return Transition(_approval(status, body, decision), changed=bool(changed))

    async def pending_approvals_for(self, fingerprint: str) -> list[Approval]:
        index = self._key("approvals", "pending", fingerprint)
        with self._errors():
            ids = sorted(await self._cmd("SMEMBERS", index))
        found, gone = await self._approvals(ids)
        if gone:
            with self._errors():
                await self._cmd("SREM", index, *gone)
        pending = [a for a in found if a.status is ApprovalStatus.PENDING]
        return sorted(pending, key=lambda a: (a.created_at, a.id))
