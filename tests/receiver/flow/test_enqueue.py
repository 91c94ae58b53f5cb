"""The enqueuer's group commit (``receiver.flow.enqueue``): concurrent callers share one
``claim_and_enqueue``, and each gets what it would have got alone, one after the other.

Each case starts its requests in the same turn of the event loop, on SQLite and on the local
Redis, through a store that counts (and, scripted, fails) the calls; then every request's
answer, the number of store calls, the queued work and the claims are checked: a firing is
claimed exactly when its work is queued (or it was claimed before).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from receiver.decisions import Decision
from receiver.errors import StateError
from receiver.flow.enqueue import GROUP_MAX, Enqueuer
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.sqlite.store import SqliteStateStore
from receiver.store.values import BacklogFull, WorkItem
from remediations.registry import default_registry
from rules.alert import Alert
from rules.engine import RuleIndex
from rules.loader import default_pack_paths, load_rules
from tests.support.fakeclock import FakeClock
from tests.support.redisdb import REDIS_URL, drop_prefix

_RULE = RuleIndex(load_rules(default_pack_paths(), catalogue=default_registry(),
                             targets=None).ruleset).rule("high-error-rate-after-rollout-undo")
_ALERT = Alert(fingerprint="f1", status="firing", labels={"alertname": "HighCPU"}, annotations={},
               starts_at=datetime(2026, 11, 23, 6, 42, 28, tzinfo=UTC), starts_at_raw="2026-11-23T06:42:28Z")


def decision(n: int) -> Decision:
    assert _RULE is not None
    return Decision(f"d{n}", f"k{n}", _RULE, _ALERT, "P2", timedelta(minutes=5), True)


class Counting:
    """A store's ``claim_and_enqueue`` with each call's decision ids kept; ``script`` fails calls in
    turn (``None``: the call runs)."""

    def __init__(self, store: StateStore, script: Sequence[Exception | None]) -> None:
        self.store = store
        self.script = list(script)
        self.calls: list[list[str]] = []

    async def claim_and_enqueue(self, items: Sequence[WorkItem], *, ttl: float,
                                max_backlog: int) -> list[bool]:
        self.calls.append([i.id for i in items])
        failure = self.script.pop(0) if self.script else None
        if failure is not None:
            raise failure
        return await self.store.claim_and_enqueue(items, ttl=ttl, max_backlog=max_backlog)


_BIG = GROUP_MAX - 100
Answer = tuple[list[int], list[int]] | type[Exception]  # (queued, duplicates) or the error


@dataclass(frozen=True)
class Case:
    name: str
    requests: list[list[int]]
    want: list[Answer]
    calls: int
    room: int = 1000
    claimed_before: list[int] = field(default_factory=list)
    script: list[Exception | None] = field(default_factory=list)


CASES = [
    Case("a lone request: one call", [[1, 2]], [([1, 2], [])], calls=1),
    Case("three requests share one call", [[1], [2, 3], [4]], [([1], []), ([2, 3], []), ([4], [])], calls=1),
    Case("a firing two requests carry is queued for the first, a duplicate for the later",
         [[1, 2], [2, 3], [1]], [([1, 2], []), ([3], [2]), ([], [1])], calls=1),
    Case("a firing claimed before is a duplicate for each", [[1, 2], [2]], [([1], [2]), ([], [2])],
         calls=1, claimed_before=[2]),
    Case("backlog full mid-batch: each alone, in order; those that fit are queued",
         [[1, 2], [3, 4], [5, 6], [7]], [([1, 2], []), ([3, 4], []), BacklogFull, ([7], [])],
         calls=5, room=5),
    Case("full, but duplicates need no room", [[1, 2, 3], [1, 2], [4, 5, 6]],
         [([1, 2, 3], []), ([], [1, 2]), BacklogFull], calls=4, room=4),
    Case("the shared call fails: each alone, and they succeed", [[1], [2, 3], [2]],
         [([1], []), ([2, 3], []), ([], [2])], calls=4, script=[StateError("connection lost")]),
    Case("the store is down: after one more try the rest get its error untried", [[1], [2], [3]],
         [StateError, StateError, StateError], calls=2, script=[StateError("down"), StateError("down")]),
    Case("one request's own failure is its alone", [[1], [2], [3]],
         [([1], []), StateError, StateError], calls=3, script=[StateError("x"), None, StateError("y")]),
    Case("a lone request's failure: one call", [[1]], [StateError], calls=1, script=[StateError("down")]),
    Case("a group is at most GROUP_MAX decisions: the first alone, the next two together",
         [list(range(_BIG)), list(range(_BIG, _BIG + 200)), [-1]],
         [(list(range(_BIG)), []), (list(range(_BIG, _BIG + 200)), []), ([-1], [])], calls=2, room=2000),
]


@pytest.fixture(params=["sqlite", "redis"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path,
                     clock: FakeClock) -> AsyncIterator[Callable[[], StateStore]]:
    opened: list[StateStore] = []
    prefix = f"test-{uuid.uuid4().hex[:12]}"

    def build() -> StateStore:
        if request.param == "sqlite":
            store: StateStore = SqliteStateStore(tmp_path / f"state-{len(opened)}.db", clock=clock)
        else:
            from receiver.store.redis.store import RedisStateStore  # noqa: PLC0415

            store = RedisStateStore(REDIS_URL, clock=clock, prefix=f"{prefix}-{len(opened)}")
        opened.append(store)
        return store

    yield build
    for store in opened:
        await store.close()
    if request.param == "redis":
        for n in range(len(opened)):
            await drop_prefix(f"{prefix}-{n}")


def _settings(make_settings: Callable[..., Settings], room: int) -> Settings:
    return make_settings(queue={"size": room})


async def _answer(enqueuer: Enqueuer, request: list[int]) -> Answer:
    try:
        fresh, found = await enqueuer.decisions([decision(n) for n in request])
    except Exception as exc:
        return type(exc)
    return [int(d.id[1:]) for d in fresh], [int(d.id[1:]) for d in found]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_concurrent_requests_share_a_call_and_get_their_own_answer(
        case: Case, make_store: Callable[[], StateStore], make_settings: Callable[..., Settings]) -> None:
    store = make_store()
    await store.open()
    await store.claim([f"k{n}" for n in case.claimed_before], ttl=3600)
    counting = Counting(store, case.script)
    enqueuer = Enqueuer(_settings(make_settings, case.room), store=cast(StateStore, counting))
    got = await asyncio.gather(*(_answer(enqueuer, r) for r in case.requests))
    assert got == case.want
    assert len(counting.calls) == case.calls
    queued = [n for answer in got if isinstance(answer, tuple) for n in answer[0]]
    taken = await store.take("c1", 10_000, block=0)
    assert [i.id for i in taken] == [f"d{n}" for n in queued]  # in arrival order
    for n in {n for r in case.requests for n in r}:  # a claim never without its work
        assert await store.claimed(f"k{n}") == (n in queued or n in case.claimed_before), n


async def test_a_caller_cancelled_before_its_turn_has_nothing_queued(
        make_store: Callable[[], StateStore], make_settings: Callable[..., Settings]) -> None:
    store = make_store()
    await store.open()
    counting = Counting(store, [])
    enqueuer = Enqueuer(_settings(make_settings, 100), store=cast(StateStore, counting))
    tasks = [asyncio.create_task(_answer(enqueuer, r)) for r in ([1], [2], [3])]
    await asyncio.sleep(0)  # each has handed its part over; the shared call comes next turn
    tasks[1].cancel()
    first, second, third = await asyncio.gather(*tasks, return_exceptions=True)
    assert (first, third) == (([1], []), ([3], []))
    assert isinstance(second, asyncio.CancelledError)
    assert counting.calls == [["d1", "d3"]]
    assert not await store.claimed("k2")


async def test_calls_made_while_one_is_under_way_share_the_next(
        make_store: Callable[[], StateStore], make_settings: Callable[..., Settings]) -> None:
    store = make_store()
    await store.open()
    gate = asyncio.Event()

    class Slow(Counting):
        async def claim_and_enqueue(self, items: Sequence[WorkItem], **kw: Any) -> list[bool]:
            if not self.calls:
                await gate.wait()
            return await super().claim_and_enqueue(items, **kw)

    slow = Slow(store, [])
    enqueuer = Enqueuer(_settings(make_settings, 100), store=cast(StateStore, slow))
    first = asyncio.create_task(_answer(enqueuer, [1]))
    for _ in range(3):
        await asyncio.sleep(0)
    later = [asyncio.create_task(_answer(enqueuer, r)) for r in ([2], [1, 3])]
    for _ in range(3):
        await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(first, *later) == [([1], []), ([2], []), ([3], [1])]
    assert slow.calls == [["d1"], ["d2", "d1", "d3"]]
