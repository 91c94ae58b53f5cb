"""The Redis store's deferred work beyond the shared contract: its keys.

Runs against the real local Redis on a key prefix of its own, dropped after.
"""

from __future__ import annotations

import uuid

from redis.crc import key_slot

from receiver.store.redis.store import RedisStateStore
from receiver.store.values import WorkItem
from tests.support.fakeclock import FakeClock
from tests.support.redisdb import REDIS_URL, drop_prefix, raw_client


async def test_deferred_work_lives_on_the_queue_slot_and_leaves_no_key_behind(clock: FakeClock) -> None:
    """While work waits, its three keys are ``{PREFIX:queue}:deferred…`` (the stream's slot, so one
    script moves an item between them) and never expire (they hold accepted work, like the
    stream); once every item is queued again, nothing of them is left."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    store = RedisStateStore(REDIS_URL, clock=clock, prefix=prefix)
    await store.open()
    client = raw_client(REDIS_URL)
    try:
        await store.enqueue([WorkItem(id=f"w{i}", payload={"i": i}, dedup_key=f"k{i}") for i in (1, 2)],
                            ttl=3600, max_backlog=10)
        one, two = await store.take("c1", 2, block=0)
        assert await store.defer(one.ref, one, not_before=clock.now() + 60, wake="lock:x", rank=1)
        assert await store.defer(two.ref, two, not_before=clock.now() + 60)
        keys = {k async for k in client.scan_iter(match=f"{{{prefix}:queue}}:deferred*")}
        names = {f"{{{prefix}:queue}}:deferred", f"{{{prefix}:queue}}:deferred:items",
                 f"{{{prefix}:queue}}:deferred:wake"}
        assert keys == names
        assert {key_slot(k.encode()) for k in keys} == {key_slot(f"{{{prefix}:queue}}:work".encode())}
        assert {k: await client.pttl(k) for k in keys} == dict.fromkeys(names, -1)
        assert await store.wake_deferred("lock:x", count=1) == 1
        clock.advance(60)
        assert await store.release_deferred(limit=10) == (2, 0)
        assert {k async for k in client.scan_iter(match=f"{{{prefix}:queue}}:deferred*")} == set()
    finally:
        await client.aclose()
        await store.close()
        await drop_prefix(prefix)
