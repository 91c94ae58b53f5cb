"""Group commit: concurrent callers' parts share one store call, each caller its own answer.

Used by ``receiver.flow.enqueue`` (``claim_and_enqueue``) and ``receiver.flow.resolution``
(``close_resolved``). The parts given to a :class:`GroupCommit` in the same turn of the event
loop (concurrent webhooks wake together from the audit log's group commit), or while its
store call is under way, go to the next call together, in the order they came, at most
``limit`` in size (one larger part goes alone). One part alone waits for nothing but the next
turn. The call (``run``) answers each part of the group in turn: a value, or an exception
that is that part's alone.

When a shared call fails (raises), the parts are taken again one at a time in the same order,
as if none had been shared, until one fails other than ``goes_on`` allows: the rest then get
that error without a try. A caller cancelled before its turn has nothing done; one cancelled
while its call is under way is not answered. Cancelling the flusher (shutdown) cancels every
caller still waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P")  # one caller's part
R = TypeVar("R")  # its answer

Run = Callable[[Sequence[P]], Awaitable[Sequence[R | Exception]]]


@dataclass(frozen=True, slots=True)
class _Waiting(Generic[P, R]):
    """One caller's part, waiting for its answer."""

    part: P
    answer: asyncio.Future[R]


def _never(exc: Exception) -> bool:
    return False


class GroupCommit(Generic[P, R]):
    """Runs the parts it is given through ``run``, a group per call; one per store call kind."""

    def __init__(self, run: Run[P, R], *, size: Callable[[P], int], limit: int,
                 goes_on: Callable[[Exception], bool] = _never) -> None:
        self._run = run
        self._size = size
        self._limit = limit
        self._goes_on = goes_on
        self._waiting: deque[_Waiting[P, R]] = deque()
        self._group: list[_Waiting[P, R]] = []  # in the call under way
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, part: P) -> R:
        """``part``'s answer from the call it shares; raises its own error."""
        loop = asyncio.get_running_loop()
        waiting: _Waiting[P, R] = _Waiting(part, loop.create_future())
        self._waiting.append(waiting)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await waiting.answer

    async def _flush(self) -> None:
        """Run the waiting parts, a group per call, until none waits."""
        try:
            while self._waiting:
                self._group = self._next_group()
                if self._group:
                    await self._call(self._group)
                self._group = []
        finally:  # cancelled (shutdown): nobody waits for an answer that never comes
            for waiting in [*self._group, *self._waiting]:
                waiting.answer.cancel()
            self._group = []
            self._waiting.clear()
            self._flusher = None

    def _next_group(self) -> list[_Waiting[P, R]]:
        group: list[_Waiting[P, R]] = []
        size = 0
        while self._waiting:
            waiting = self._waiting[0]
            if waiting.answer.done():  # its caller was cancelled before its turn
                self._waiting.popleft()
                continue
            if group and size + self._size(waiting.part) > self._limit:
                break
            group.append(self._waiting.popleft())
            size += self._size(waiting.part)
        return group

    async def _call(self, group: list[_Waiting[P, R]]) -> None:
        try:
            outcomes = await self._run([w.part for w in group])
        except Exception as exc:  # the store's error, or a fault of ours (which one part may cause)
            if len(group) == 1:
                _answer(group[0], exc)
            else:
                await self._one_at_a_time(group)
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            _answer(waiting, outcome)

    async def _one_at_a_time(self, group: list[_Waiting[P, R]]) -> None:
        """After a shared call failed: each part alone, in order, as if none had been shared."""
        down: Exception | None = None  # failed other than goes_on allows: the rest are not tried
        for waiting in group:
            if waiting.answer.done():
                continue
            if down is not None:
                _answer(waiting, down)
                continue
            try:
                (outcome,) = await self._run([waiting.part])
            except Exception as exc:
                outcome = exc
            _answer(waiting, outcome)
            if isinstance(outcome, Exception) and not self._goes_on(outcome):
                down = outcome


def _answer(waiting: _Waiting[P, R], outcome: R | Exception) -> None:
    if waiting.answer.done():  # its caller was cancelled meanwhile
        return
    if isinstance(outcome, Exception):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)
