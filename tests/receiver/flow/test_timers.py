"""Timers fired by two replicas' housekeeping on one real store, on the injected clock: a
lease covers one handler, so slow handlers one after another never let another replica
take a timer this one already holds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from receiver.errors import StateError
from receiver.flow.timers import LEASE, TimerKind, Timers
from receiver.store.sqlite.store import SqliteStateStore
from receiver.store.values import Timer
from tests.support.fakeclock import FakeClock


async def test_slow_handlers_in_a_row_do_not_outlive_the_lease_of_the_next_timer(tmp_path: Path) -> None:
    """Replica A handles three due timers, each taking most of a lease (a notifier slow to
    answer); replica B's housekeeping runs meanwhile. Every timer is handled exactly once."""
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock=clock)
    await store.open()
    a, b = Timers(store=store), Timers(store=store)
    handled: list[tuple[str, str]] = []

    async def slow(timer: Timer) -> None:
        handled.append(("a", timer.id))
        clock.advance(LEASE * 0.6)
        await b.fire_due()

    async def quick(timer: Timer) -> None:
        handled.append(("b", timer.id))

    a.on(TimerKind.P1_UNRESOLVED, slow)
    b.on(TimerKind.P1_UNRESOLVED, quick)
    now = clock.now()
    for n in range(3):
        assert await a.arm(Timer(id=f"t{n}", kind=TimerKind.P1_UNRESOLVED, fingerprint="f", due_at=now,
                                 expires_at=now + 86_400, payload={}))
    assert await a.fire_due() == 1
    assert sorted(t for _, t in handled) == ["t0", "t1", "t2"]
    assert handled[0] == ("a", "t0")
    assert await a.fire_due() == await b.fire_due() == 0
    await store.close()


class CountingStore(SqliteStateStore):
    """A real SQLite store that counts its ``put_timers`` calls (and fails them when told)."""

    def __init__(self, path: Path, *, clock: FakeClock) -> None:
        super().__init__(path, clock=clock)
        self.calls: list[list[str]] = []
        self.failing = False

    async def put_timers(self, timers: Sequence[Timer]) -> list[bool]:
        self.calls.append([t.id for t in timers])
        if self.failing:
            raise StateError("state database: disk I/O error")
        return await super().put_timers(timers)


async def test_timers_armed_at_once_share_one_store_call(tmp_path: Path) -> None:
    """Twelve decisions arming in one turn of the loop (a storm's P1s) make one ``put_timers``,
    each told whether it armed (an id armed twice: the first); a store that fails tells each."""
    clock = FakeClock()
    store = CountingStore(tmp_path / "s.db", clock=clock)
    await store.open()
    timers = Timers(store=store)
    now = clock.now()

    def p1(n: int) -> Timer:
        return Timer(id=f"p1-{n}", kind=TimerKind.P1_UNRESOLVED, fingerprint=f"f{n}", due_at=now + 60,
                     expires_at=now + 86_400, payload={"n": n})

    assert await timers.arm(p1(0))
    armed = await asyncio.gather(*(timers.arm(p1(n)) for n in [*range(11), 3]))
    assert armed == [False, *[True] * 10, False]
    assert store.calls == [["p1-0"], [f"p1-{n}" for n in [*range(11), 3]]]
    store.failing = True
    got = await asyncio.gather(*(timers.arm(p1(n)) for n in range(20, 23)), return_exceptions=True)
    assert [type(g) for g in got] == [StateError] * 3
    store.failing = False
    assert await timers.arm(p1(20))
    await store.close()
