"""The state store contract, continued: work whose holder is gone is taken up again promptly.

Run like ``test_contract.py`` against SQLite, a real local Redis and a real Redis Cluster,
with the injected clock moving time: a consumer's heartbeat expiring hands its work over at
once (not after the visibility timeout), a process takes up its own items nothing in it
holds any more, and completing an item twice is harmless (the completer retries).
"""

from __future__ import annotations

from receiver.store.values import WorkItem
from tests.receiver.store.conftest import StoreFactory, opened
from tests.support.fakeclock import FakeClock


def items(*ids: str) -> list[WorkItem]:
    return [WorkItem(id=i, payload={"n": i}) for i in ids]


async def test_a_consumer_whose_heartbeat_expired_loses_its_work_at_once(make_store: StoreFactory,
                                                                         clock: FakeClock) -> None:
    """Beating consumers keep their work; once a heartbeat is 6 s old its work goes to the next
    reclaim, however recently it was touched; a consumer that never beat waits out ``idle``."""
    one, two = await opened(make_store), await opened(make_store)
    await one.enqueue(items("a", "b", "c"), ttl=600, max_backlog=10)
    await one.heartbeat("killed", ttl=6)
    await two.heartbeat("alive", ttl=6)
    (a,) = await one.take("killed", 1, block=0)
    (b,) = await two.take("alive", 1, block=0)
    (c,) = await two.take("silent", 1, block=0)
    clock.advance(5)
    await two.heartbeat("alive", ttl=6)
    await one.touch("killed", [a.ref])
    assert await two.reclaim("rescuer", idle=60, count=10) == []
    clock.advance(1)  # the killed consumer's heartbeat ends now; it is touched, 1 s idle
    reclaimed = await two.reclaim("rescuer", idle=60, count=10)
    assert [(i.id, i.deliveries, i.payload) for i in reclaimed] == [("a", 2, {"n": "a"})]
    assert await one.reclaim("other", idle=60, count=10) == []  # handed out once
    clock.advance(60)  # beating does not stand for touching: the holders touch what they hold
    await two.heartbeat("alive", ttl=6)
    await two.heartbeat("rescuer", ttl=6)
    await two.touch("alive", [b.ref])
    await two.touch("rescuer", [a.ref])
    assert [i.id for i in await one.reclaim("other", idle=60, count=10)] == [c.id]


async def test_a_restarted_process_sees_its_old_name_expire(make_store: StoreFactory,
                                                             clock: FakeClock) -> None:
    """A process killed while holding work, started again under a new name on the same store:
    its old name's work is taken up once the old heartbeat expires, through the store reopened."""
    first = await opened(make_store)
    await first.enqueue(items("w"), ttl=600, max_backlog=10)
    await first.heartbeat("old", ttl=3)
    await first.take("old", 1, block=0)
    await first.close()
    second = await opened(make_store)
    await second.heartbeat("new", ttl=3)
    assert await second.reclaim("new", idle=60, count=10) == []
    clock.advance(3)
    assert [i.id for i in await second.reclaim("new", idle=60, count=10)] == ["w"]


async def test_own_items_nothing_holds_are_taken_up_again(make_store: StoreFactory, clock: FakeClock) -> None:
    """A consumer's own items outside ``held`` come back once untouched for ``idle`` (fresh takes
    are not orphans); another consumer's items never do."""
    store = await opened(make_store)
    await store.enqueue(items("a", "b", "c", "d"), ttl=600, max_backlog=10)
    a, b, c = await store.take("me", 3, block=0)
    (d,) = await store.take("someone", 1, block=0)
    assert await store.reclaim_own("me", held=[a.ref], idle=5, count=10) == []  # just taken
    clock.advance(6)
    orphans = await store.reclaim_own("me", held=[a.ref], idle=5, count=1)
    assert [(i.id, i.deliveries) for i in orphans] == [("b", 2)]
    orphans = await store.reclaim_own("me", held=[a.ref], idle=5, count=10)
    assert [(i.id, i.deliveries) for i in orphans] == [("c", 2)]
    assert await store.reclaim_own("me", held=[a.ref], idle=5, count=10) == []  # touched when taken up
    await store.complete([b.ref])
    clock.advance(6)
    assert [i.id for i in await store.reclaim_own("me", held=[a.ref, c.ref], idle=5, count=10)] == []
    assert [i.id for i in await store.reclaim_own("me", held=[], idle=5, count=10)] == ["a", "c"]
    assert [i.id for i in await store.reclaim_own("someone", held=[], idle=5, count=10)] == ["d"]
    assert d.id == "d"


async def test_completing_again_is_harmless(make_store: StoreFactory, clock: FakeClock) -> None:
    """A completion retried after its answer was lost (it had run) removes nothing more, and the
    item is never handed out again by take, reclaim or reclaim_own."""
    store = await opened(make_store)
    await store.enqueue(items("a", "b"), ttl=600, max_backlog=10)
    a, _b = await store.take("me", 2, block=0)
    await store.complete([a.ref])
    await store.complete([a.ref])
    assert await store.backlog() == 1
    clock.advance(600)
    assert [i.id for i in await store.reclaim_own("me", held=[], idle=5, count=10)] == ["b"]
    assert await store.reclaim("other", idle=60, count=10) == []
    assert await store.take("other", 10, block=0) == []
