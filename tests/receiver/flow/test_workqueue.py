"""receiver.flow.workqueue: the feeder is woken once a quarter of the buffer is free."""

from __future__ import annotations

import asyncio

import pytest

from receiver.flow.workqueue import FINISHED_SLACK, WorkQueue
from receiver.store.values import WorkItem


async def feeder_goes_on(queue: WorkQueue) -> bool:
    """Whether the feeder waiting for room would go on now."""
    try:
        await asyncio.wait_for(queue.wait_room(), 0.01)
    except TimeoutError:
        return False
    return True


def items(n: int) -> list[WorkItem]:
    return [WorkItem(id=f"d{i}", payload={}, ref=str(i)) for i in range(n)]


@pytest.mark.parametrize(
    ("capacity", "done", "room"),
    [(8, 0, False), (8, 1, False), (8, 2, True), (4, 1, True), (1, 1, True), (32, 7, False), (32, 8, True)],
)
async def test_room_opens_at_a_quarter_free(capacity: int, done: int, room: bool) -> None:
    queue = WorkQueue(capacity)
    assert await queue.put(items(capacity))
    taken = [await queue.get() for _ in range(done)]
    for item in taken:
        queue.done(item)
    assert await feeder_goes_on(queue) is room
    assert queue.free() == done


async def test_a_put_below_a_quarter_free_keeps_the_feeder_waiting() -> None:
    queue = WorkQueue(8)
    assert await feeder_goes_on(queue)
    await queue.put(items(6))  # 2 free: a quarter, still room
    assert await feeder_goes_on(queue)
    await queue.put([WorkItem(id="d9", payload={}, ref="9")])  # 1 free
    assert not await feeder_goes_on(queue)


async def test_finished_items_stay_held_but_free_their_place() -> None:
    """Items awaiting their removal from the store are still held (touched, not taken up again,
    the queue not idle) but let the feeder fill the buffer again; past the slack they take room."""
    queue = WorkQueue(4)
    await queue.put(items(4))
    taken = [await queue.get() for _ in range(4)]
    for item in taken:
        queue.finished(item)
    assert (queue.free(), await feeder_goes_on(queue), queue.unfinished) == (4, True, 4)
    assert sorted(queue.in_flight()) == ["0", "1", "2", "3"]
    assert await queue.put(items(4)) == []  # held here: not queued twice
    assert not queue._idle.is_set()
    for item in taken:
        queue.done(item)
    assert (queue.in_flight(), queue.unfinished, queue._idle.is_set()) == ([], 0, True)


async def test_finished_items_past_the_slack_take_room() -> None:
    """A store that never confirms removals stops the taking once the slack is used up."""
    queue = WorkQueue(1)
    for n in range(FINISHED_SLACK + 1):
        await queue.put([WorkItem(id=f"d{n}", payload={}, ref=str(n))])
        queue.finished(await queue.get())
    assert queue.free() == 0
    assert not await feeder_goes_on(queue)
