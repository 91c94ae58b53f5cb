"""Which store a ``state:`` URL names: ``sqlite:…`` or a Redis (``receiver.stateurl``).

Called by ``receiver.runtime`` (and the tools that open a store of their own), and by
``remediator config check``. A ``sqlite:`` URL means what it says, as a ``file:`` URL
does: ``sqlite:///var/lib/remediator/state.db`` is the absolute path
``/var/lib/remediator/state.db`` (``sqlite:////var/…``, SQLAlchemy's spelling, too), and
``sqlite:state.db`` is relative to the working directory. A host (``sqlite://db/x``) or
a query is refused, saying so.
"""

from __future__ import annotations

from pathlib import Path

from receiver.clock import Clock
from receiver.errors import StateError
from receiver.store.protocol import StateStore

SQLITE_FORMS = "sqlite:///ABSOLUTE/PATH or sqlite:RELATIVE/PATH"


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:`` URL names; :class:`StateError` saying why when it names none."""
    rest = url.removeprefix("sqlite:")
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise StateError(f"state {url!r}: a SQLite file is on this host, not on {host!r}; "
                             f"write {SQLITE_FORMS}")
        path = slash + path.lstrip("/")
    else:
        path = rest
    if "?" in path or "#" in path:
        raise StateError(f"state {url!r}: a SQLite URL takes no query or fragment; write {SQLITE_FORMS}")
    if path in ("", "/") or path.endswith("/"):
        raise StateError(f"state {url!r} names no file; write {SQLITE_FORMS}")
    return Path(path)


def open_store(url: str, *, clock: Clock, prefix: str = "remediator") -> StateStore:
    """The store a ``state:`` URL names."""
    if url.startswith("sqlite:"):
        from receiver.store.sqlite.store import SqliteStateStore  # noqa: PLC0415

        return SqliteStateStore(sqlite_path(url), clock=clock)
    if url.startswith(("redis://", "rediss://", "unix://", "redis+", "rediss+")):
        from receiver.store.redis.store import RedisStateStore  # noqa: PLC0415

        return RedisStateStore(url, clock=clock, prefix=prefix)
    raise StateError(f"unsupported state URL {url!r}")
