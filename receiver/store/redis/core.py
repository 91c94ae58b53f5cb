"""The Redis store's core: its two clients, key names, scripts and writes, errors as StateError.

Built by ``receiver.store.redis.store.RedisStateStore`` and handed to each of its parts
(``receiver.store.redis.queue``, ``guards``, ``approvals``, ``timers``), which run their
commands and Lua scripts (``receiver.store.redis.lua``) through it. The clients are one
server's, a Redis Cluster's or a Sentinel master's (``receiver.store.redis.clients``).

Key layout (Cluster-safe): every key of a part carries that part's hash tag,
``{PREFIX:PART}:…`` (``key``), so all of a part's keys live in one hash slot and every
script, which only ever touches the keys of its own part, runs on one node. Writes go
through ``run`` (a script) and ``write`` (a command): with ``replicas=N`` in the URL each
is followed by ``WAIT`` on the same connection and fails unless N replicas hold it.
Also the two helpers every part uses to pass numbers to Lua: ``num`` (a clock time) and
``gc_ms`` (a key's garbage-collection TTL).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.commands.core import AsyncScript
from redis.exceptions import RedisClusterException, RedisError

from receiver.clock import Clock
from receiver.errors import StateError
from receiver.stateurl import parse_redis_url, redacted
from receiver.store.redis import lua
from receiver.store.redis.clients import make_clients

DAY = 86_400.0
READ_TIMEOUT = 5.0
WAIT_TIMEOUT_MS = 1000  # how long a write waits for its replicas (``replicas=N``) before it fails
PARTS = ("queue", "guards", "approvals", "timers")
Call = tuple[str, Sequence[str], Sequence[str | int]]
"""A script's name, keys and arguments, for :meth:`RedisCore.run_all`."""


def num(value: float) -> str:
    """A float as Lua's ``tonumber`` reads it back exactly."""
    return repr(float(value))


def gc_ms(seconds: float) -> int:
    """Milliseconds of garbage-collection TTL for a key whose logic needs it ``seconds`` more.

    The logical TTL plus a day (at least a day), never less: the key is how the store
    remembers a cooldown, a window, a tombstone, so one that went before its logical time
    would lift them early. Not capped: the longest duration a rule or setting can give
    (about 292 years) is far inside what Redis accepts.
    """
    return int((max(seconds, 0.0) + DAY) * 1000)


def _secrets_of(url: str) -> list[str]:
    """The password of a URL (user info or ``password=`` query), raw and unquoted, longest first."""
    parts = urlsplit(url)
    try:
        found = {parts.password or ""}
    except ValueError:  # a netloc urllib cannot read: the regexes still mask the user info
        found = set()
    found |= {v for k, v in parse_qsl(parts.query) if k in ("password", "sentinel_password")}
    found |= {unquote(s) for s in found}
    return sorted((s for s in found if s), key=len, reverse=True)


class NotReplicated(StateError):
    """A write the master ran but fewer replicas than ``replicas=N`` hold: a failover may lose it, or it
    may survive. ``result`` is what the master answered, for a caller that undoes what it can (a claim
    given back, queued entries deleted) so that a resend is not taken for a duplicate."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


class RedisCore:
    """One Redis (server, Cluster or Sentinel master) for one store: keys tagged per part, every failure a
    StateError without the password."""

    def __init__(self, url: str, *, clock: Clock, prefix: str) -> None:
        self.clock = clock
        self.prefix = prefix
        self._url = url
        self._secrets = _secrets_of(url)
        self.safe_url = self._redact(redacted(url))
        self._client: Any = None
        self._blocking: Any = None  # blocked waits for work do not hold up commands
        self._scripts: dict[str, AsyncScript] = {}
        self._replicas = 0
        self.cluster = self.sentinel = False

    def key(self, part: str, *parts: str) -> str:
        """``{PREFIX:PART}:parts…``: the hash tag puts every key of one part in one slot."""
        assert part in PARTS, part
        return ":".join((f"{{{self.prefix}:{part}}}", *parts))

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Any Redis failure becomes StateError, without the URL's password."""
        try:
            yield
        except (RedisError, RedisClusterException) as exc:
            detail = self._redact(str(exc) or type(exc).__name__)
            raise StateError(f"redis state store {self.safe_url}: {detail}") from None

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        """Make the clients and register the scripts (no round trip: the first command connects)."""
        try:
            target = parse_redis_url(self._url)
            self._client, self._blocking = make_clients(target, read_timeout=READ_TIMEOUT)
        except (ValueError, TypeError, RedisClusterException) as exc:
            raise StateError(f"invalid redis state URL {self.safe_url}: "
                             f"{self._redact(str(exc))}") from None
        self._replicas = target.replicas
        self.cluster = target.kind == "cluster"
        self.sentinel = target.kind == "sentinel"
        self._scripts = {name: self._client.register_script(source) for name, source in lua.SCRIPTS.items()}

    async def close(self) -> None:
        for client in (self._client, self._blocking):
            if client is not None:
                await client.aclose()
        self._client = self._blocking = None

    async def ping(self) -> None:
        with self.errors():
            await self.cmd("PING")

    def conn(self) -> Any:
        """The command client (``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``)."""
        if self._client is None:
            raise StateError("the state store is not open")
        return self._client

    def blocking(self) -> Any:
        """The client for blocked reads (waiting for work), apart from the one for commands."""
        if self._blocking is None:
            raise StateError("the state store is not open")
        return self._blocking

    async def cmd(self, *args: str) -> Any:
        """One command that changes nothing (reads)."""
        return await self.conn().execute_command(*args)

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Run the script ``name`` of ``receiver.store.redis.lua.SCRIPTS`` (all of them write)."""
        self.conn()
        script = self._scripts[name]
        if not self._replicas:
            return await script(keys=keys, args=args)
        async with self._client.pipeline(transaction=False) as pipe:
            await script(keys=keys, args=args, client=pipe)
            return await self._held(pipe)

    async def run_all(self, calls: Sequence[Call]) -> list[Any]:
        """Run scripts of ``receiver.store.redis.lua.SCRIPTS`` (each on its own part's keys) in one
        round trip and in order: on one server or a Sentinel master as one MULTI (nothing runs
        between them), followed by ``WAIT`` with ``replicas=``; on a Cluster in one pipeline, each
        on its slot's node (no order between nodes: a caller that needs one calls twice).

        Each script's answer, or the exception it met (the others ran): ``NoScriptError`` for one
        the server does not have (sent as ``EVALSHA``: the source is kilobytes; the caller
        :meth:`load`s and runs again what must run). A connection's failure raises: unknown
        what ran. :class:`NotReplicated` carries the answers when the replicas did not confirm them.
        """
        conn = self.conn()
        evals = [("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args) for name, keys, args in calls]
        async with conn.pipeline(transaction=False) as pipe:
            if self.cluster:
                for command in evals:
                    pipe.execute_command(*command)
                return list(await pipe.execute(raise_on_error=False))
            pipe.execute_command("MULTI")
            for command in evals:
                pipe.execute_command(*command)
            pipe.execute_command("EXEC")
            if self._replicas:
                pipe.execute_command("WAIT", self._replicas, WAIT_TIMEOUT_MS)
            answers = await pipe.execute(raise_on_error=False)
        for answer in answers:  # the first: a script refused when queued (EXEC aborted: nothing ran)
            if isinstance(answer, Exception):
                raise answer
        result = list(answers[len(evals) + 1])
        if self._replicas:
            await self._replicated(answers[-1], result)
        return result

    async def load(self, names: Sequence[str]) -> None:
        """Load the scripts ``names`` into the server (every Cluster node): one lost its script cache."""
        for name in names:
            script = self._scripts[name]
            script.sha = await self.conn().script_load(script.script)

    async def write(self, *args: str) -> Any:
        """One command that writes."""
        if not self._replicas:
            return await self.conn().execute_command(*args)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.execute_command(*args)
            return await self._held(pipe)

    async def _held(self, pipe: Any) -> Any:
        """Run the pipelined write then ``WAIT`` (same connection); fail unless enough replicas hold it."""
        pipe.execute_command("WAIT", self._replicas, WAIT_TIMEOUT_MS)
        result, held = await pipe.execute(raise_on_error=False)
        for answer in (result, held):
            if isinstance(answer, Exception):
                raise answer  # as a command alone would raise it (not annotated with the pipeline's args)
        await self._replicated(held, result)
        return result

    async def _replicated(self, held: Any, result: Any) -> None:
        """:class:`NotReplicated` (with ``result``) unless ``held`` (WAIT's answer) is enough replicas."""
        if int(held) < self._replicas:
            if self.sentinel:  # perhaps a master the sentinels have replaced: ask them again
                await self._client.connection_pool.disconnect(inuse_connections=False)
            raise NotReplicated(f"redis state store {self.safe_url}: the write reached {held} of "
                                f"{self._replicas} replicas within {WAIT_TIMEOUT_MS} ms (replicas=): "
                                "a failover could lose it", result)

    async def reads(self, commands: Sequence[Sequence[str]]) -> list[Any]:
        """Several read commands in one round trip (a pipeline: one slot's keys, so one node)."""
        async with self.conn().pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())
