"""A clock tests move by hand: ``sleep`` advances it instead of waiting."""

from __future__ import annotations

import asyncio


class FakeClock:
    """Implements ``receiver.clock.Clock``; starts at a fixed, recent time."""

    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)
