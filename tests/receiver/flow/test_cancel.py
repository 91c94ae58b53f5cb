"""Stopping our tasks for sure (``receiver.flow.cancel.stop_tasks``): cancelled again until they end.

Why one ``cancel()`` is not enough here: on Python 3.11 ``asyncio.wait_for`` returns the
result it was waiting for when that result and a cancellation arrive in the same turn of
the loop, and redis-py writes every command through ``wait_for``; the first test shows it
on the running Python (skipped from 3.12, where ``wait_for`` no longer loses it).
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from receiver.flow.cancel import stop_tasks


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for keeps cancellations from 3.12 on")
async def test_wait_for_loses_a_cancellation_that_comes_with_its_result() -> None:
    """The cancellation is asked for; the task carries on with the result instead."""
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(asyncio.wait_for(answer, 5))
    await asyncio.sleep(0)  # the task waits inside wait_for
    answer.set_result("reply")
    task.cancel()
    assert await asyncio.wait_for(asyncio.shield(task), 5) == "reply"
    assert task.cancelling() == 1
    assert not task.cancelled()


def stubborn(lost: list[int], *, deaf: asyncio.Event | None = None) -> asyncio.Task[None]:
    """A loop whose first cancellation is lost (as in ``wait_for`` above); with ``deaf``, every one
    until that event is set."""

    async def loop() -> None:
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if lost and (deaf is None or deaf.is_set()):
                    raise
                lost.append(1)

    return asyncio.create_task(loop(), name="stubborn")


async def test_a_task_that_lost_a_cancellation_is_stopped_by_the_next() -> None:
    lost: list[int] = []
    task = stubborn(lost)
    await asyncio.sleep(0)
    task.cancel()  # what the feeder's stop did: one cancel, then wait for the task
    done, _ = await asyncio.wait([task], timeout=0.3)
    assert not done  # it carries on
    assert lost == [1]
    assert await stop_tasks([task], within=5, every=0.05) == []
    assert task.cancelled()


async def test_a_task_that_never_stops_is_given_up_at_the_bound() -> None:
    lost: list[int] = []
    deaf = asyncio.Event()
    task = stubborn(lost, deaf=deaf)
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await stop_tasks([task], within=0.3, every=0.05) == [task]
    assert 0.3 <= loop.time() - started < 5
    assert len(lost) >= 3  # cancelled again and again meanwhile
    deaf.set()
    assert await stop_tasks([task], within=5) == []
