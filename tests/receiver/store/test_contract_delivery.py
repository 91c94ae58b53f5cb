"""The state store contract, continued: what "nothing accepted is lost" asks of a store.

Run like ``test_contract.py`` against SQLite, a real local Redis and a real Redis Cluster,
with the injected clock moving time: a request's dedup claims and its work made in one
transaction (``claim_and_enqueue``).
"""

from __future__ import annotations

import asyncio

import pytest

from receiver.store.values import BacklogFull, WorkItem
from tests.receiver.store.conftest import StoreFactory, opened
from tests.support.fakeclock import FakeClock


def item(n: int | str, key: str | None = "") -> WorkItem:
    return WorkItem(id=f"d{n}", payload={"n": n}, dedup_key=f"k{n}" if key == "" else key)


async def test_claim_and_enqueue_queues_the_fresh_and_claims_their_keys(make_store: StoreFactory,
                                                                        clock: FakeClock) -> None:
    """Fresh keys are claimed and their items queued; a key claimed before, or earlier in the same
    call, is a duplicate (neither queued nor claimed again); an item without a key is always queued."""
    store = await opened(make_store)
    assert await store.claim(["k2"], ttl=60) == [True]
    flags = await store.claim_and_enqueue(
        [item(1), item(2), item(3), item("3b", "k3"), item(4, None)], ttl=3600, max_backlog=10)
    assert flags == [True, False, True, False, True]
    assert await store.backlog() == 3
    assert await store.oldest_work() == clock.now()
    taken = await store.take("c1", 10, block=0)
    assert [(i.id, i.dedup_key, i.payload) for i in taken] == [
        ("d1", "k1", {"n": 1}), ("d3", "k3", {"n": 3}), ("d4", None, {"n": 4})]
    clock.advance(600)  # claims are made for the full ttl at once, not briefly
    assert await store.claimed("k1")
    assert await store.claimed("k3")
    assert not await store.claimed("k2")  # the earlier claim lapsed; the duplicate did not renew it
    clock.advance(3000)
    assert await store.claim_and_enqueue([item(1)], ttl=60, max_backlog=10) == [True]


async def test_claim_and_enqueue_with_no_room_claims_and_adds_nothing(make_store: StoreFactory) -> None:
    """BacklogFull leaves no claim behind, so the resend is not taken for a duplicate; duplicates
    need no room."""
    store = await opened(make_store)
    assert await store.claim_and_enqueue([item(1), item(2)], ttl=3600, max_backlog=2) == [True, True]
    with pytest.raises(BacklogFull):
        await store.claim_and_enqueue([item(3), item(4)], ttl=3600, max_backlog=3)
    assert not await store.claimed("k3")
    assert not await store.claimed("k4")
    assert await store.backlog() == 2
    assert await store.claim_and_enqueue([item(1)], ttl=3600, max_backlog=2) == [False]
    assert await store.claim_and_enqueue([item(3)], ttl=3600, max_backlog=3) == [True]


async def test_concurrent_claim_and_enqueue_queue_each_key_once(make_store: StoreFactory) -> None:
    """Forty requests through two replicas carrying the same ten firings: each firing is queued
    once, and every claim has its item."""
    one, two = await opened(make_store), await opened(make_store)
    batches = [[item(n) for n in range(10)] for _ in range(40)]
    results = await asyncio.gather(*((one if i % 2 else two).claim_and_enqueue(b, ttl=60, max_backlog=1000)
                                     for i, b in enumerate(batches)))
    assert [sum(r[n] for r in results) for n in range(10)] == [1] * 10
    taken = await one.take("c1", 100, block=0)
    assert sorted(i.id for i in taken) == [f"d{n}" for n in range(10)]


async def test_claim_and_enqueue_of_nothing_does_nothing(make_store: StoreFactory) -> None:
    store = await opened(make_store)
    assert await store.claim_and_enqueue([], ttl=60, max_backlog=0) == []
    assert await store.backlog() == 0
