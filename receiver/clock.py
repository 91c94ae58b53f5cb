"""The clock every time-based decision reads, injected so tests never sleep for real.

Created by ``receiver.http.app.create_app`` (``SystemClock``) or by tests (``tests.support.fakeclock``),
read by intake (``for:``, dedup TTLs), the executor (retry backoff) and the state store.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time for records and TTLs, and a sleep that tests can make instant."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a fake clock advances instead)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock moved by hand, for runs that replay time (``rules test``, ``simulate``).

    ``sleep`` advances it instead of waiting, so a retry backoff costs no real time.
    """

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


def as_datetime(clock: Clock) -> datetime:
    """The clock's now as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.now(), tz=UTC)
