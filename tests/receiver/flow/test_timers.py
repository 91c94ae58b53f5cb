"""Timers fired by two replicas' housekeeping on one real store, on the injected clock: a
lease covers one handler, so slow handlers one after another never let another replica
take a timer this one already holds."""

from __future__ import annotations

from pathlib import Path

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
