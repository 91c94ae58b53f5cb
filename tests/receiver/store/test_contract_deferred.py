"""The state store contract for deferred work: ``defer``, ``wake_deferred``, ``release_deferred``,
``deferred_count``, ``deferred``.

Run like ``test_contract.py`` against SQLite, a real local Redis and a real Redis Cluster, with
the injected clock moving time: work an open circuit or a held lock stopped leaves the queue and
waits, durably, until its time, then is queued again once; it is always in exactly one place.
"""

from __future__ import annotations

import asyncio

from receiver.store.protocol import StateStore
from receiver.store.values import WorkItem
from tests.receiver.store.conftest import StoreFactory, opened
from tests.support.fakeclock import FakeClock


def item(n: int, **payload: object) -> WorkItem:
    return WorkItem(id=f"d{n}", payload={"n": n, **payload}, dedup_key=f"k{n}\x1ffp\x1f2026")


async def queued(store: StateStore, n: int = 1) -> list[WorkItem]:
    await store.claim_and_enqueue([item(n)], ttl=3600, max_backlog=100)
    return await store.take("c1", 10, block=0)


async def test_deferred_work_leaves_the_queue_and_comes_back_when_due(make_store: StoreFactory,
                                                                      clock: FakeClock) -> None:
    """Deferred, an item is neither queued nor in flight; released early it stays; due, it is queued
    again once, with the payload it was deferred with (its dedup key kept), and taken afresh."""
    store = await opened(make_store)
    [taken] = await queued(store)
    later = item(1, deferred={"attempts": 1, "since": clock.now(), "floats": [1.5, 0.0], "empty": {}})
    assert await store.defer(taken.ref, later, not_before=clock.now() + 30) is True
    assert (await store.backlog(), await store.deferred_count()) == (0, 1)
    assert await store.take("c1", 10, block=0) == []
    assert await store.reclaim("c2", idle=0, count=10) == []
    assert [(i.id, i.payload, i.dedup_key, at) for i, at in await store.deferred()] == [
        ("d1", later.payload, later.dedup_key, clock.now() + 30)]
    clock.advance(29)
    assert await store.release_deferred(limit=10) == (0, 1)
    clock.advance(1)
    assert await store.release_deferred(limit=10) == (1, 0)
    assert await store.release_deferred(limit=10) == (0, 0)
    assert await store.deferred_count() == 0
    assert await store.deferred() == []
    [again] = await store.take("c1", 10, block=0)
    assert (again.id, again.payload, again.dedup_key) == ("d1", later.payload, later.dedup_key)
    assert again.deliveries == 1
    assert await store.backlog() == 1
    assert await store.oldest_work() == clock.now()  # enqueued again now


async def test_defer_of_work_no_longer_queued_keeps_nothing(make_store: StoreFactory,
                                                            clock: FakeClock) -> None:
    """An entry completed meanwhile is not brought back by a late ``defer``; deferring one id again
    (the same decision, another attempt) replaces it rather than keeping it twice."""
    store = await opened(make_store)
    [taken] = await queued(store)
    await store.complete([taken.ref])
    assert await store.defer(taken.ref, item(1), not_before=clock.now()) is False
    assert await store.deferred() == []
    [taken] = await queued(store, 2)
    assert await store.defer(taken.ref, item(2, attempts=1), not_before=clock.now() + 5) is True
    clock.advance(5)
    assert await store.release_deferred(limit=10) == (1, 0)
    [taken] = await store.take("c1", 10, block=0)
    assert await store.defer(taken.ref, item(2, attempts=2), not_before=clock.now() + 7) is True
    assert await store.defer(taken.ref, item(2, attempts=3), not_before=clock.now() + 9) is False
    assert [(i.payload["attempts"], at) for i, at in await store.deferred()] == [(2, clock.now() + 7)]


async def test_due_items_are_released_in_order_within_the_limit_and_survive_a_restart(
        make_store: StoreFactory, clock: FakeClock) -> None:
    """Soonest first, at most ``limit`` per call; what waits is in the store, not the process."""
    one = await opened(make_store)
    for n, wait in ((1, 30), (2, 10), (3, 20)):
        [taken] = await queued(one, n)
        assert await one.defer(taken.ref, item(n), not_before=clock.now() + wait)
    await one.close()
    two = await opened(make_store)
    waiting = [(i.id, at - clock.now()) for i, at in await two.deferred()]
    assert waiting == [("d2", 10), ("d3", 20), ("d1", 30)]
    clock.advance(30)
    assert await two.release_deferred(limit=2) == (2, 1)
    assert [i.id for i in await two.take("c1", 10, block=0)] == ["d2", "d3"]
    assert await two.release_deferred(limit=2) == (1, 0)
    assert [i.id for i in await two.take("c1", 10, block=0)] == ["d1"]


async def test_two_replicas_releasing_at_once_queue_each_item_once(make_store: StoreFactory,
                                                                   clock: FakeClock) -> None:
    """Every replica's feeder releases due items; each is queued by exactly one of them."""
    one, two = await opened(make_store), await opened(make_store)
    for n in range(1, 21):
        [taken] = await queued(one, n)
        assert await one.defer(taken.ref, item(n), not_before=clock.now())
    moved = await asyncio.gather(*((one if i % 2 else two).release_deferred(limit=3) for i in range(20)))
    assert sum(n for n, _ in moved) == 20
    ids = [i.id for i in await one.take("c1", 100, block=0)]
    assert sorted(ids) == sorted(f"d{n}" for n in range(1, 21))


async def test_waking_brings_forward_what_waits_for_a_key_lowest_rank_first_once(
        make_store: StoreFactory, clock: FakeClock) -> None:
    """``wake_deferred`` makes the lowest-ranked items waiting under one key due now, each once;
    other keys, keys that are a prefix of it, and items with no key are left as they were."""
    store = await opened(make_store)
    waits = [(1, "api/x", 30.0), (2, "api/x", 10.0), (3, "api/x", 20.0), (4, "api/xy", 5.0), (5, None, 1.0)]
    for n, wake, rank in waits:
        [taken] = await queued(store, n)
        assert await store.defer(taken.ref, item(n), not_before=clock.now() + 60, wake=wake, rank=rank)
    assert await store.wake_deferred("api/x", count=1) == 1
    assert await store.release_deferred(limit=10) == (1, 4)
    assert [i.id for i in await store.take("c1", 10, block=0)] == ["d2"]
    assert await store.wake_deferred("api/x", count=5) == 2
    assert await store.wake_deferred("api/x", count=5) == 0
    assert await store.release_deferred(limit=10) == (2, 2)
    assert sorted(i.id for i in await store.take("c1", 10, block=0)) == ["d1", "d3"]
    assert [(i.id, at - clock.now()) for i, at in await store.deferred()] == [("d4", 60), ("d5", 60)]


async def test_deferring_again_replaces_the_wait_and_what_it_waits_for(make_store: StoreFactory,
                                                                       clock: FakeClock) -> None:
    """Released and deferred again under another key, an item is woken by the new key only;
    released, it is no longer woken at all."""
    store = await opened(make_store)
    [taken] = await queued(store)
    assert await store.defer(taken.ref, item(1), not_before=clock.now() + 5, wake="lock-a", rank=1)
    clock.advance(5)
    assert await store.release_deferred(limit=10) == (1, 0)
    assert await store.wake_deferred("lock-a", count=1) == 0
    [taken] = await store.take("c1", 10, block=0)
    assert await store.defer(taken.ref, item(1), not_before=clock.now() + 50, wake="circuit-b", rank=1)
    assert await store.wake_deferred("lock-a", count=1) == 0
    assert await store.wake_deferred("circuit-b", count=1) == 1
    assert await store.release_deferred(limit=10) == (1, 0)
