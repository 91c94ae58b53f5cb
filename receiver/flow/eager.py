"""A coroutine awaited under a time limit whose timer is armed only if the coroutine waits.

Called by ``receiver.flow.steps`` for every action's ``plan()``: most plans only describe
(``notify.log``, a missing target's dry run) and finish without waiting on anything, and an
``asyncio.timeout`` (a timer scheduled on the loop, then cancelled) cost several times what
such a plan does. :func:`within` runs the coroutine's first step at once; if it finishes
there, no timer was needed (a timeout can only interrupt a coroutine where it waits); if
it waits, the rest runs under ``asyncio.timeout_at`` with the deadline counted from the
start, as ``asyncio.timeout(limit)`` around the whole call would: ``TimeoutError`` past it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


async def within(coro: Coroutine[Any, Any, T], limit: float) -> T:
    """``await coro``, ``TimeoutError`` once ``limit`` seconds passed while it waits."""
    deadline = asyncio.get_running_loop().time() + limit
    try:
        waits_on = coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    async with asyncio.timeout_at(deadline):
        result: T = await _Resumed(coro, waits_on)
    return result


class _Resumed:
    """The rest of a coroutine whose first step ran: what it waits on goes to the task."""

    def __init__(self, coro: Coroutine[Any, Any, Any], waits_on: Any) -> None:
        self._coro = coro
        self._waits_on = waits_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waits_on = self._coro, self._waits_on
        while True:
            try:
                sent = yield waits_on
            except GeneratorExit:  # the awaiting task is gone: so is the coroutine
                coro.close()
                raise
            except BaseException as exc:  # a cancellation (the timeout's among them) goes in
                try:
                    waits_on = coro.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                waits_on = coro.send(sent)
            except StopIteration as done:
                return done.value
