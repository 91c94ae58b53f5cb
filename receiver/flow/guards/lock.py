"""Target locks: no two actions on one subject at once, across replicas, with fencing.

Used by ``receiver.flow.guards.pipeline`` around each execution. The lock has a TTL (so a
crashed holder cannot block a target for ever) and a fencing token; before each attempt
the holder checks its token still holds, so a holder whose lock expired and was taken
over never acts after the new holder started.
"""

from __future__ import annotations

import structlog

from receiver.decisions import Reason
from receiver.errors import StateError
from receiver.flow.guards import Blocked, Guard
from receiver.store.protocol import StateStore

_log = structlog.get_logger("remediator.lock")


class Fence:
    """A held lock; ``check()`` before every side effect."""

    def __init__(self, store: StateStore, key: str, token: int) -> None:
        self._store = store
        self.key = key
        self.token = token

    async def release(self) -> None:
        try:
            await self._store.release_lock(self.key, self.token)
        except StateError as exc:  # it expires by its TTL
            _log.warning("lock.release_failed", key=self.key, error=str(exc))

    async def check(self) -> None:
        if not await self._store.lock_valid(self.key, self.token):
            raise Blocked(Guard.TARGET_LOCK, Reason.LOCK_LOST,
                          f"the lock on {self.key} expired or was taken over (token {self.token}); "
                          "not acting on a stale lock")


async def acquire_target(store: StateStore, key: str, *, owner: str, ttl: float) -> Fence:
    """Hold the lock on ``key`` or raise :class:`Blocked` (``target_locked``) at once."""
    token = await store.acquire_lock(key, owner, ttl=ttl)
    if token is None:
        raise Blocked(Guard.TARGET_LOCK, Reason.TARGET_LOCKED,
                      f"another action is running on {key}; not running two at once")
    return Fence(store, key, token)
