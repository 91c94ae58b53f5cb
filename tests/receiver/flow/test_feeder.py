"""receiver.flow.feeder: deferred work is released at most every tenth of a second, not per take."""

from __future__ import annotations

import asyncio
from typing import Any

from receiver.flow.feeder import Feeder
from receiver.flow.workqueue import WorkQueue
from receiver.store.values import WorkItem


class Store:
    """A queue that always has work: counts takes and releases of deferred work."""

    def __init__(self) -> None:
        self.takes = 0
        self.releases: list[float] = []
        self._n = 0

    async def release_deferred(self, *, limit: int) -> tuple[int, int]:
        self.releases.append(asyncio.get_running_loop().time())
        return 0, 0

    async def take(self, consumer: str, count: int, *, block: float) -> list[WorkItem]:
        self.takes += 1
        self._n += 1
        return [WorkItem(id=f"d{self._n}", payload={}, ref=str(self._n))]


async def test_a_busy_feeder_releases_deferred_work_at_most_every_tenth_of_a_second() -> None:
    store = Store()
    queue = WorkQueue(4)
    feeder = Feeder(store=store, queue=queue, consumer="c", visibility=60, heartbeat=2)  # type: ignore[arg-type]

    async def work() -> None:
        while True:
            item = await queue.get()
            await asyncio.sleep(0.001)
            queue.done(item)

    worker = asyncio.create_task(work())
    feeding: Any = asyncio.create_task(feeder._feed())
    await asyncio.sleep(0.35)
    feeder._stopping = True
    for task in (worker, feeding):
        task.cancel()
    await asyncio.gather(worker, feeding, return_exceptions=True)
    assert store.releases  # the first take is preceded by one
    assert store.takes > 2 * len(store.releases)
    assert all(b - a >= 0.1 for a, b in zip(store.releases, store.releases[1:], strict=False))
