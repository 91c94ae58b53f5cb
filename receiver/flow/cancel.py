"""Stopping the service's own tasks for sure: cancelled again until they end, within a bound.

Called at shutdown by ``receiver.flow.feeder``, ``receiver.flow.workers`` and
``receiver.runtime``. One ``Task.cancel()`` is not always enough on Python 3.11: when a
cancellation and the result of what ``asyncio.wait_for`` waits on arrive in the same turn
of the loop, ``wait_for`` returns the result and the cancellation is lost; redis-py sends
every command through ``asyncio.wait_for`` (its ``socket_timeout``), so under load a task
cancelled during a Redis command carried on as if nothing had happened: the feeder waited
for work again and SIGTERM never finished. :func:`stop_tasks` cancels again every
``every`` seconds until each task has ended and gives up after ``within`` seconds,
returning the tasks still running (the caller logs them and goes on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, within: float,
                     every: float = 0.2) -> list[asyncio.Task[Any]]:
    """Cancel ``tasks`` (again every ``every`` s) until they end or ``within`` s pass; the ones left."""
    tasks = list(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(every, left))
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a task that ended in an error was already logged
    return sorted(pending, key=lambda task: task.get_name())
