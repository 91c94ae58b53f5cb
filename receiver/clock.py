"""The clock every time-based decision reads, injected so tests never sleep for real.

Created by ``receiver.app.create_app`` (``SystemClock``) or by tests (``tests.fakes``),
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


def as_datetime(clock: Clock) -> datetime:
    """The clock's now as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.now(), tz=UTC)
