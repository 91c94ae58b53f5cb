"""Waiting for a state store that does not answer yet: opened again with capped backoff.

Used by ``receiver.runtime.Runtime.start``: a store over the network (Redis) that is not
reachable when ``serve`` starts (its container still starting, a failover) is not a
reason to exit. The service listens, answers ``/ready`` 503 with :attr:`StoreWaiter.problem`
and webhooks 503 + ``Retry-After`` until :meth:`StoreWaiter.until_open` returns. Each
failure is logged once per change of its message, not once per try. A file store (SQLite)
is never waited for: what keeps it from opening does not go away by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from receiver.errors import StateError
from receiver.store.protocol import StateStore

_log = structlog.get_logger("remediator")
FIRST_DELAY = 0.5  # seconds before the second try; doubled after each failure
MAX_DELAY = 30.0


class StoreWaiter:
    """Open ``store``; when that fails, say why and open it again with capped backoff."""

    def __init__(self, store: StateStore, *, url: str, first: float = FIRST_DELAY, cap: float = MAX_DELAY,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._store = store
        self._url = url
        self._first, self._cap, self._sleep = first, cap, sleep
        self.problem: str | None = None  # why the store is not open yet; None once it is
        self.tries = 0
        self._logged: str | None = None

    @property
    def waits(self) -> bool:
        """Whether a failure to open is waited out (a network store) rather than fatal (a file)."""
        return not self._url.startswith("sqlite:")

    async def try_open(self) -> bool:
        """One try; False (and :attr:`problem` set, logged once per change) when it failed.

        A file store's failure is raised as it is.
        """
        self.tries += 1
        try:
            await self._store.open()
        except StateError as exc:
            if not self.waits:
                raise
            with contextlib.suppress(StateError):
                await self._store.close()  # so the next try opens afresh
            self.problem = f"not reachable yet, retrying: {exc}"
            if str(exc) != self._logged:
                self._logged = str(exc)
                _log.warning("state.unreachable", error=str(exc), tries=self.tries,
                             detail="not ready until the state store answers; webhooks get 503")
            return False
        if self.problem is not None:
            _log.info("state.reachable", tries=self.tries)
        self.problem = None
        return True

    async def until_open(self) -> None:
        """After a failed :meth:`try_open`: try again after ``first`` seconds, then twice as long
        each time up to ``cap``, until it opens."""
        delay = self._first
        while True:
            await self._sleep(delay)
            if await self.try_open():
                return
            delay = min(delay * 2, self._cap)
