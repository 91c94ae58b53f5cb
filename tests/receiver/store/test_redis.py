"""The Redis state store beyond the shared contract: its keys, its errors, its blocking reads.

Runs against the real local Redis; every test uses its own key prefix and drops it after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from receiver.errors import StateError
from receiver.flow.guards.lock import acquire_target
from receiver.store.redis.core import PARTS, gc_ms
from receiver.store.redis.store import RedisStateStore
from receiver.store.values import Approval, ApprovalStatus, Budget, Pause, Timer, WorkItem
from rules.durations import parse_duration
from tests.support.fakeclock import FakeClock
from tests.support.redisdb import REDIS_URL, drop_prefix

# A database of its own, so "no key outside the prefix" can be checked on the whole keyspace.
KEYS_URL = "redis://127.0.0.1:6379/12"  # DBs 14 and 15 belong to the redis action tests
DAY_MS = 86_400_000
LONGEST = parse_duration("292y").total_seconds()  # about the longest duration a rule or setting can give

StoreFactory = Callable[..., RedisStateStore]


@pytest.fixture
async def make_store(clock: FakeClock) -> AsyncIterator[StoreFactory]:
    """Builds stores on a unique prefix (shared by every store of the test); closes and drops them."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    built: list[RedisStateStore] = []

    def build(url: str = REDIS_URL) -> RedisStateStore:
        store = RedisStateStore(url, clock=clock, prefix=prefix)
        built.append(store)
        return store

    yield build
    for store in built:
        await store.close()
    for url in (REDIS_URL, KEYS_URL):
        await drop_prefix(prefix, url)


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    """A plain client on the test Redis, to look at (or break) what the store wrote."""
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def opened(factory: StoreFactory, url: str = REDIS_URL) -> RedisStateStore:
    store = factory(url)
    await store.open()
    return store


def approval(approval_id: str, clock: FakeClock) -> Approval:
    return Approval(id=approval_id, status=ApprovalStatus.PENDING, created_at=clock.now(),
                    expires_at=clock.now() + 1800, decision="d", rule="r", fingerprint="fp", payload={})


async def all_keys(client: aioredis.Redis) -> set[str]:
    return {key async for key in client.scan_iter(count=1000)}


async def test_every_key_is_under_the_prefix_and_expires(make_store: StoreFactory, clock: FakeClock) -> None:
    """After every method ran, new keys are all ``{PREFIX:PART}:…`` (each part in one hash slot); all
    expire (at least a day out) but the stream, the fencing counter, the pause, the layout mark and the
    index of armed timers."""
    client = aioredis.from_url(KEYS_URL, decode_responses=True)
    try:
        before = await all_keys(client)
        store = await opened(make_store, KEYS_URL)
        prefix = store._prefix
        await store.ping()
        await store.claim(["k1", "k2", "k3"], ttl=60)
        await store.release(["k3"])
        await store.enqueue([WorkItem(id=f"w{i}", payload={"i": i}, dedup_key=f"k{i}") for i in (1, 2)],
                            ttl=3600, max_backlog=10)
        await store.claim_and_enqueue([WorkItem(id="w4", payload={}, dedup_key="k4")], ttl=60, max_backlog=10)
        first, second = await store.take("c1", 2, block=0)
        await store.touch("c1", [first.ref])
        clock.advance(120)
        await store.heartbeat("c2", ttl=6)
        await store.reclaim("c2", idle=60, count=1)
        await store.reclaim_own("c1", held=[], idle=60, count=1)
        await store.complete([first.ref])
        assert await store.backlog() == 2
        await store.set_pause(Pause(source="admin", actor="a", detail="d", since=clock.now()))
        await store.get_pause()
        await store.admit(Budget(member="m", cooldown_key="c", cooldown=60, rate_key="r", rate_max=5,
                                 rate_window=60, blast_max=5, blast_window=60), spend=True)
        await store.record_result("t1", ok=False, threshold=1, cooloff=60)
        await store.record_result("t2", ok=False, threshold=3, cooloff=60)
        await store.record_result("t2", ok=True, threshold=3, cooloff=60)
        await store.circuit("t1")
        token = await store.acquire_lock("l1", "me", ttl=60)
        assert token is not None
        assert await store.lock_valid("l1", token)
        await store.release_lock("l1", token)
        await store.acquire_lock("l2", "me", ttl=60)
        await store.put_approval(approval("a1", clock))
        await store.put_approval(approval("a2", clock))
        await store.decide_approval("a1", ApprovalStatus.APPROVED, actor="x", comment=None)
        await store.list_approvals()
        await store.pending_approvals_for("fp")
        await store.put_timer(Timer(id="t1", kind="verify", fingerprint="fp", due_at=clock.now(),
                                    expires_at=clock.now() + 60, payload={}))
        await store.claim_due_timers(lease=30, limit=5)
        await store.count_occurrence("o", "m", window=60)
        assert second.ref

        created = await all_keys(client) - before
        assert created
        tags = {f"{{{prefix}:{part}}}" for part in PARTS}
        assert {k for k in created if k.partition("}")[0] + "}" not in tags} == set()
        assert {part: {key_slot(k.encode()) for k in created if k.startswith(f"{{{prefix}:{part}}}")}
                for part in PARTS} == {part: {key_slot(f"{prefix}:{part}".encode())} for part in PARTS}
        ttls = {k: await client.pttl(k) for k in created}
        forever = {k for k, ttl in ttls.items() if ttl == -1}
        assert forever == {f"{{{prefix}:queue}}:work", f"{{{prefix}:guards}}:fence",
                           f"{{{prefix}:guards}}:pause", f"{{{prefix}:guards}}:layout",
                           f"{{{prefix}:timers}}:timers"}  # armed timers leave it as they finish
        assert await client.type(f"{{{prefix}:queue}}:work") == "stream"
        assert {k: ttl for k, ttl in ttls.items() if k not in forever and ttl < DAY_MS - 60_000} == {}
    finally:
        await client.aclose()


async def test_stores_with_other_prefixes_do_not_see_each_other(make_store: StoreFactory,
                                                               clock: FakeClock) -> None:
    """The prefix is the namespace: another prefix on the same Redis has its own claims."""
    one = await opened(make_store)
    other = RedisStateStore(REDIS_URL, clock=clock, prefix=f"test-{uuid.uuid4().hex[:12]}")
    await other.open()
    try:
        assert await one.claim(["k"], ttl=60) == [True]
        assert await other.claim(["k"], ttl=60) == [True]
    finally:
        await other.close()
        await drop_prefix(other._prefix)


async def test_unreachable_redis_raises_state_error(make_store: StoreFactory) -> None:
    """With no Redis listening, open, ping, claim and enqueue raise StateError (and close still works)."""
    store = make_store("redis://127.0.0.1:1/0")
    with pytest.raises(StateError, match="redis state store"):
        await store.open()
    with pytest.raises(StateError):
        await store.ping()
    with pytest.raises(StateError):
        await store.claim(["k"], ttl=60)
    with pytest.raises(StateError):
        await store.enqueue([WorkItem(id="w", payload={})], ttl=60, max_backlog=10)


async def test_unopened_store_raises_state_error(make_store: StoreFactory) -> None:
    """Using a store before open() is a StateError, not an AttributeError."""
    with pytest.raises(StateError, match="not open"):
        await make_store().claim(["k"], ttl=60)


@pytest.mark.parametrize("url", [
    pytest.param("redis://user:s3cretpw@127.0.0.1:1/0", id="userinfo-unreachable"),
    pytest.param("redis://user:s3cr%40tpw@127.0.0.1:1/0", id="userinfo-percent-encoded"),
    pytest.param("redis://:s3cretpw@127.0.0.1:6379/0", id="wrong-password-real-redis"),
    pytest.param("unix:///nonexistent/redis.sock?password=s3cretpw", id="query-password"),
    pytest.param("redis+cluster://:s3cretpw@127.0.0.1:1,127.0.0.1:2", id="cluster-unreachable"),
    pytest.param("redis+sentinel://u:s3cretpw@127.0.0.1:1/svc?sentinel_password=s3cr3t2",
                 id="sentinel-unreachable"),
    pytest.param("redis+sentinel://127.0.0.1:6379/svc?sentinel_password=s3cretpw", id="not-a-sentinel"),
])
async def test_password_never_appears_in_errors(make_store: StoreFactory, url: str) -> None:
    """Whatever fails, the StateError names the store without the URL's password."""
    store = make_store(url)
    with pytest.raises(StateError) as info:
        await store.open()
    with pytest.raises(StateError) as again:
        await store.claim(["k"], ttl=60)
    for message in (str(info.value), str(again.value)):
        assert "s3cr" not in message
        assert "***" in message


async def test_redis_refusals_become_state_errors(make_store: StoreFactory, raw: aioredis.Redis) -> None:
    """A command Redis refuses (a key of the wrong type) is a StateError, not a redis exception."""
    store = await opened(make_store)
    await raw.set(store._core.key("guards", "circuit", "t"), "not a hash")
    with pytest.raises(StateError, match="WRONGTYPE"):
        await store.circuit("t")


async def test_blocked_take_does_not_hold_up_other_commands(make_store: StoreFactory) -> None:
    """While a take waits for work, claims through the same store still answer at once."""
    store = await opened(make_store)
    waiting = asyncio.create_task(store.take("c1", 1, block=5))
    await asyncio.sleep(0.05)
    async with asyncio.timeout(1):
        assert await store.claim(["k"], ttl=60) == [True]
    assert not waiting.done()
    await store.enqueue([WorkItem(id="w", payload={})], ttl=60, max_backlog=10)
    async with asyncio.timeout(3):
        assert [i.id for i in await waiting] == ["w"]


async def test_blocked_take_times_out_empty(make_store: StoreFactory) -> None:
    """A take with nothing to do returns no items once its (real, short) wait is over."""
    store = await opened(make_store)
    async with asyncio.timeout(3):
        assert await store.take("c1", 1, block=0.2) == []


async def test_cancelled_take_leaves_the_store_usable(make_store: StoreFactory) -> None:
    """Cancelling a blocked take (shutdown) loses no work and the store keeps working."""
    store = await opened(make_store)
    waiting = asyncio.create_task(store.take("c1", 1, block=5))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await store.enqueue([WorkItem(id="w", payload={})], ttl=60, max_backlog=10)
    assert [i.id for i in await store.take("c2", 1, block=1)] == ["w"]


async def test_completed_work_leaves_nothing_behind(make_store: StoreFactory, raw: aioredis.Redis) -> None:
    """Complete removes the entry from the stream, the pending list and the touched times."""
    store = await opened(make_store)
    await store.enqueue([WorkItem(id=f"w{i}", payload={}) for i in range(3)], ttl=60, max_backlog=10)
    taken = await store.take("c1", 3, block=0)
    await store.complete([i.ref for i in taken])
    prefix, stream = store._prefix, store._core.key("queue", "work")
    assert await raw.xlen(stream) == 0
    assert (await raw.xpending(stream, f"{prefix}:workers"))["pending"] == 0
    assert not await raw.exists(store._core.key("queue", "work", "touched"))


async def test_a_dead_consumer_is_forgotten_a_day_later_once_it_holds_nothing(
        make_store: StoreFactory, raw: aioredis.Redis, clock: FakeClock) -> None:
    """Heartbeats of consumers dead for a day leave the hash and their names the group (each restart
    makes a name), but not while one still holds work (its work is reclaimed first)."""
    store = await opened(make_store)
    await store.enqueue([WorkItem(id=f"w{i}", payload={}) for i in range(2)], ttl=60, max_backlog=10)
    await store.heartbeat("done", ttl=6)
    await store.heartbeat("holding", ttl=6)
    (finished,) = await store.take("done", 1, block=0)
    (held,) = await store.take("holding", 1, block=0)
    await store.complete([finished.ref])
    clock.advance(86_400 + 10)
    await store.heartbeat("new", ttl=6)
    stream, group = store._core.key("queue", "work"), f"{store._prefix}:workers"
    beating = store._core.key("queue", "consumers")
    assert sorted(await store._core.cmd("HKEYS", beating)) == ["holding", "new"]
    assert sorted(c["name"] for c in await raw.xinfo_consumers(stream, group)) == ["holding"]
    assert [i.id for i in await store.reclaim("new", idle=60, count=10)] == [held.id]
    await store.heartbeat("new", ttl=6)
    assert await store._core.cmd("HKEYS", beating) == ["new"]
    assert [c["name"] for c in await raw.xinfo_consumers(stream, group)] == ["new"]


async def test_delivery_without_a_touch_time_is_reclaimed_after_idle(
    make_store: StoreFactory, raw: aioredis.Redis, clock: FakeClock
) -> None:
    """An entry a consumer read but never recorded (it died in between) is timed from first sight."""
    store = await opened(make_store)
    await store.enqueue([WorkItem(id="w", payload={"x": 1})], ttl=60, max_backlog=10)
    prefix = store._prefix
    await raw.xreadgroup(f"{prefix}:workers", "ghost", {store._core.key("queue", "work"): ">"}, count=1)
    assert await store.reclaim("rescuer", idle=60, count=10) == []
    clock.advance(61)
    reclaimed = await store.reclaim("rescuer", idle=60, count=10)
    assert [(i.id, dict(i.payload), i.deliveries) for i in reclaimed] == [("w", {"x": 1}, 2)]


async def test_reclaim_drops_pending_entries_deleted_from_the_stream(
    make_store: StoreFactory, raw: aioredis.Redis, clock: FakeClock
) -> None:
    """An entry deleted behind the store's back is not handed out again and leaves no touched time."""
    store = await opened(make_store)
    await store.enqueue([WorkItem(id="w", payload={})], ttl=60, max_backlog=10)
    (item,) = await store.take("dead", 1, block=0)
    prefix, stream = store._prefix, store._core.key("queue", "work")
    await raw.xdel(stream, item.ref)
    clock.advance(61)
    assert await store.reclaim("rescuer", idle=60, count=10) == []
    assert (await raw.xpending(stream, f"{prefix}:workers"))["pending"] == 0
    assert not await raw.exists(store._core.key("queue", "work", "touched"))


async def test_touch_by_another_consumer_does_not_keep_work(make_store: StoreFactory,
                                                           clock: FakeClock) -> None:
    """Only the consumer that holds an entry resets its idle time."""
    store = await opened(make_store)
    await store.enqueue([WorkItem(id="w", payload={})], ttl=60, max_backlog=10)
    (item,) = await store.take("dead", 1, block=0)
    clock.advance(50)
    await store.touch("impostor", [item.ref])
    clock.advance(20)
    assert [i.id for i in await store.reclaim("rescuer", idle=60, count=10)] == ["w"]


async def test_lost_consumer_group_is_recreated(make_store: StoreFactory) -> None:
    """If Redis loses the stream and its group (flush, restart without persistence), work flows again."""
    store = await opened(make_store)
    await drop_prefix(store._prefix)
    assert await store.reclaim("c1", idle=0, count=10) == []
    await store.enqueue([WorkItem(id="w", payload={})], ttl=60, max_backlog=10)
    assert [i.id for i in await store.take("c1", 1, block=0)] == ["w"]


async def test_fencing_tokens_grow_after_the_lock_key_is_gone(make_store: StoreFactory,
                                                              raw: aioredis.Redis) -> None:
    """Tokens come from a counter that outlives each lock's key (collected by its TTL)."""
    store = await opened(make_store)
    first = await store.acquire_lock("tgt", "r1", ttl=60)
    assert first is not None
    await raw.delete(store._core.key("guards", "lock", "tgt"))
    second = await store.acquire_lock("tgt", "r2", ttl=60)
    assert second is not None
    assert second > first


async def test_clock_times_are_stored_exactly(make_store: StoreFactory, clock: FakeClock) -> None:
    """Fractional clock times go through the Lua scripts without rounding."""
    clock.t = 1_795_000_000.123456
    store = await opened(make_store)
    opened_circuit = await store.record_result("t", ok=False, threshold=1, cooloff=0.000_001)
    assert (await store.circuit("t")).open_until == opened_circuit.open_until == clock.now() + 0.000_001
    await store.admit(Budget(member="m", cooldown_key="c", cooldown=0.5), spend=True)
    clock.advance(0.25)
    refused = await store.admit(Budget(member="n", cooldown_key="c", cooldown=0.5), spend=False)
    assert refused.retry_after == (1_795_000_000.123456 + 0.5) - clock.now()


@pytest.mark.parametrize(("seconds", "ms"), [
    (-5.0, DAY_MS),  # a logical TTL already past: the key still lives a day
    (0.0, DAY_MS),
    (0.0015, DAY_MS + 1),
    (60.0, DAY_MS + 60_000),
    (3650 * 86_400.0 + 1, (3651 * 86_400 + 1) * 1000),  # past ten years: not capped
    (LONGEST, int(LONGEST * 1000) + DAY_MS),
])
def test_garbage_ttl_is_the_logical_ttl_plus_a_day(seconds: float, ms: int) -> None:
    """A key's Redis TTL is its logical TTL plus a day, never less than the logical TTL."""
    assert gc_ms(seconds) == ms


async def _cooldown(store: RedisStateStore, clock: FakeClock) -> str:
    await store.admit(Budget(member="m", cooldown_key="c", cooldown=LONGEST), spend=True)
    return store._core.key("guards", "cooldown", "c")


async def _rate_window(store: RedisStateStore, clock: FakeClock) -> str:
    await store.admit(Budget(member="m", rate_key="r", rate_max=1, rate_window=LONGEST), spend=True)
    return store._core.key("guards", "rate", "r")


async def _claim(store: RedisStateStore, clock: FakeClock) -> str:
    await store.claim(["k"], ttl=LONGEST)
    return store._core.key("queue", "dedup", "k")


async def _lock(store: RedisStateStore, clock: FakeClock) -> str:
    await store.acquire_lock("t", "me", ttl=LONGEST)
    return store._core.key("guards", "lock", "t")


async def _timer(store: RedisStateStore, clock: FakeClock) -> str:
    await store.put_timer(Timer(id="t1", kind="verify", fingerprint="fp", due_at=clock.now() + 60,
                                expires_at=clock.now() + LONGEST, payload={}))
    return store._core.key("timers", "timer", "t1")


@pytest.mark.parametrize("spend", [_cooldown, _rate_window, _claim, _lock, _timer])
async def test_keys_outlive_the_longest_duration(
    make_store: StoreFactory, raw: aioredis.Redis, clock: FakeClock,
    spend: Callable[[RedisStateStore, FakeClock], Awaitable[str]],
) -> None:
    """A cooldown, window, claim, lock or timer of the longest duration keeps its key at least that long
    (a TTL capped below it would lift a cooldown or forget a tombstone that SQLite still keeps)."""
    store = await opened(make_store)
    key = await spend(store, clock)
    assert await raw.pttl(key) >= LONGEST * 1000


async def test_a_write_no_replica_holds_fails(make_store: StoreFactory) -> None:
    """With ``replicas=1`` and no replica, a write (here the layout mark written on open, then a claim)
    is a StateError saying a failover could lose it, after the one-second wait; the claim the caller
    was told failed is given back (a resend is not a duplicate), queued work deleted, and a claim made
    with its work undone with it."""
    store = make_store(REDIS_URL + "?replicas=1")
    with pytest.raises(StateError, match=r"reached 0 of 1 replicas .* a failover could lose it"):
        await store.open()
    with pytest.raises(StateError, match="reached 0 of 1 replicas"):
        await store.claim(["k"], ttl=60)
    with pytest.raises(StateError, match="reached 0 of 1 replicas"):
        await store.enqueue([WorkItem(id="w", payload={})], ttl=60, max_backlog=10)
    with pytest.raises(StateError, match="reached 0 of 1 replicas"):  # claims and work undone together
        await store.claim_and_enqueue([WorkItem(id="w2", payload={}, dedup_key="k2")], ttl=60, max_backlog=10)
    plain = await opened(make_store)
    assert await plain.claim(["k", "k2"], ttl=60) == [True, True]
    assert await plain.backlog() == 0


async def test_a_lock_no_replica_confirmed_does_not_outlive_the_run(make_store: StoreFactory,
                                                                   clock: FakeClock) -> None:
    """With ``replicas=1`` and no replica, taking a target lock is a StateError (the master holds it, a
    failover could lose it), so the run stops there; the hold the master kept is let go, or cut to a
    second when letting go meets the same error (as here), not left for the lock's TTL to block
    every later run on the target (seen in a Sentinel failover: a firing waited over 90 s)."""
    lossy = make_store(REDIS_URL + "?replicas=1")
    with pytest.raises(StateError, match="reached 0 of 1 replicas"):
        await lossy.open()
    with pytest.raises(StateError, match="reached 0 of 1 replicas"):
        await acquire_target(lossy, "tgt", owner="host-1/run-a", ttl=600)
    plain = await opened(make_store)
    clock.advance(1.5)
    assert await plain.acquire_lock("tgt", "host-2/run-b", ttl=60) is not None
