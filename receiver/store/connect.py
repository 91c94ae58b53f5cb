"""Which store a ``state:`` URL names: ``sqlite:///path`` or a Redis (``receiver.stateurl``).

Called by ``receiver.runtime`` (and the tools that open a store of their own).
"""

from __future__ import annotations

from pathlib import Path

from receiver.clock import Clock
from receiver.errors import StateError
from receiver.store.protocol import StateStore


def open_store(url: str, *, clock: Clock, prefix: str = "remediator") -> StateStore:
    """The store a ``state:`` URL names."""
    if url.startswith("sqlite:///"):
        from receiver.store.sqlite.store import SqliteStateStore  # noqa: PLC0415

        return SqliteStateStore(Path(url.removeprefix("sqlite:///")), clock=clock)
    if url.startswith(("redis://", "rediss://", "unix://", "redis+", "rediss+")):
        from receiver.store.redis.store import RedisStateStore  # noqa: PLC0415

        return RedisStateStore(url, clock=clock, prefix=prefix)
    raise StateError(f"unsupported state URL {url!r}")
