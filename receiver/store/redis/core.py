"""The Redis store's core: its two connections, key names, registered scripts, errors as StateError.

Built by ``receiver.store.redis.store.RedisStateStore`` and handed to each of its parts
(``receiver.store.redis.queue``, ``guards``, ``approvals``, ``timers``), which run their
commands and Lua scripts (``receiver.store.redis.lua``) through it. Also the two helpers
every part uses to pass numbers to Lua: ``num`` (a clock time) and ``gc_ms`` (a key's
garbage-collection TTL).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from receiver.clock import Clock
from receiver.errors import StateError
from receiver.store.redis import lua

DAY = 86_400.0
READ_TIMEOUT = 5.0
_CONNECT_TIMEOUT = 3.0
_USERINFO_PASSWORD = re.compile(r"(?<=://)([^:@/]*):[^@]*@")
_QUERY_PASSWORD = re.compile(r"(password=)[^&]*")


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
    found = {parts.password or ""} | {v for k, v in parse_qsl(parts.query) if k == "password"}
    found |= {unquote(s) for s in found}
    return sorted((s for s in found if s), key=len, reverse=True)


class RedisCore:
    """One Redis for one store: keys under ``{prefix}:``, every failure a StateError without the password."""

    def __init__(self, url: str, *, clock: Clock, prefix: str) -> None:
        self.clock = clock
        self.prefix = prefix
        self._url = url
        self._secrets = _secrets_of(url)
        self.safe_url = self._redact(_QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1:***@", url)))
        self._client: aioredis.Redis | None = None
        self._blocking: aioredis.Redis | None = None  # blocked waits for work do not hold up commands
        self._scripts: dict[str, AsyncScript] = {}

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Any Redis failure becomes StateError, without the URL's password."""
        try:
            yield
        except RedisError as exc:
            detail = self._redact(str(exc) or type(exc).__name__)
            raise StateError(f"redis state store {self.safe_url}: {detail}") from None

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        """Make the clients and register the scripts (no round trip: the first command connects)."""
        options: dict[str, Any] = {
            "decode_responses": True, "socket_connect_timeout": _CONNECT_TIMEOUT,
            # No automatic retries: a retried claim or enqueue whose first try did run
            # would answer "already claimed" or queue the work twice.
            "retry": Retry(NoBackoff(), 0),
        }
        try:
            self._client = aioredis.from_url(self._url, socket_timeout=READ_TIMEOUT, **options)
            self._blocking = aioredis.from_url(self._url, socket_timeout=None, **options)
        except ValueError as exc:
            raise StateError(f"invalid redis state URL {self.safe_url}: "
                             f"{self._redact(str(exc))}") from None
        self._scripts = {name: self._client.register_script(source) for name, source in lua.SCRIPTS.items()}

    async def close(self) -> None:
        for client in (self._client, self._blocking):
            if client is not None:
                await client.aclose()
        self._client = self._blocking = None

    async def ping(self) -> None:
        with self.errors():
            await self.cmd("PING")

    def conn(self) -> aioredis.Redis:
        if self._client is None:
            raise StateError("the state store is not open")
        return self._client

    def blocking(self) -> aioredis.Redis:
        """The connection for blocked reads (waiting for work), apart from the one for commands."""
        if self._blocking is None:
            raise StateError("the state store is not open")
        return self._blocking

    async def cmd(self, *args: str) -> Any:
        """One command (redis-py's typed wrappers do not type-check under ``await``)."""
        return await self.conn().execute_command(*args)  # type: ignore[no-untyped-call]

    def script(self, name: str) -> AsyncScript:
        """The registered script ``name`` of ``receiver.store.redis.lua.SCRIPTS``."""
        self.conn()
        return self._scripts[name]
