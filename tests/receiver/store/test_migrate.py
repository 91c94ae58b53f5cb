"""Opening the Redis store on an older deployment's keys (``PREFIX:…``) moves them to ``{PREFIX:PART}:…``.

Runs on the local Redis and on the session's private Redis Cluster. The older layout is made
the way an older version left it: a store builds real state, then every key is renamed back
to its older name (``DUMP``/``RESTORE``, which works across a Cluster's slots).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import ResponseError

from receiver.errors import StateError
from receiver.store.redis.migrate import FENCE, migrate
from receiver.store.redis.store import RedisStateStore
from receiver.store.values import Approval, ApprovalStatus, Budget, Pause, Timer, Verdict, WorkItem
from tests.support.fakeclock import FakeClock
from tests.support.redisdb import REDIS_URL, drop_prefix, raw_client


@pytest.fixture(params=["redis", "redis-cluster"])
async def where(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str, Any]]:
    """(state URL, a unique prefix, a plain client on the same Redis); the prefix dropped after."""
    url = request.getfixturevalue("cluster_url") if request.param == "redis-cluster" else REDIS_URL
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    client = raw_client(url)
    yield url, prefix, client
    await client.aclose()
    await drop_prefix(prefix, url)


async def to_older_layout(client: Any, prefix: str) -> None:
    """Rename every ``{prefix:PART}:rest`` to ``prefix:rest`` (the names before hash tags); no layout mark."""
    for key in [k async for k in client.scan_iter(match=f"{{{prefix}:*", count=1000)]:
        rest = key.partition("}:")[2]
        if rest != "layout":
            await client.restore(f"{prefix}:{rest}", max(await client.pttl(key), 0), await client.dump(key))
        await client.delete(key)


async def test_every_kind_of_state_survives_the_move(where: tuple[str, str, Any], clock: FakeClock) -> None:
    """Queued and in-flight work, claims, the pause, a cooldown, a lock and its fencing counter, an
    approval, a timer, an occurrence count and an open circuit all read back after the move; the older
    names are gone but two fences that stop an older replica."""
    url, prefix, client = where
    older = RedisStateStore(url, clock=clock, prefix=prefix)
    await older.open()
    await older.claim(["k1"], ttl=60)
    await older.enqueue([WorkItem(id="w1", payload={"n": 1}, dedup_key="k1"), WorkItem(id="w2", payload={})],
                        ttl=600, max_backlog=10)
    (in_flight,) = await older.take("older-replica", 1, block=0)
    await older.claim(["k9"], ttl=600)
    pause = Pause(source="admin", actor="ops", detail="maintenance", since=clock.now())
    await older.set_pause(pause)
    await older.admit(Budget(member="m1", cooldown_key="c", cooldown=600), spend=True)
    token = await older.acquire_lock("tgt", "older-replica", ttl=600)
    await older.put_approval(Approval(id="a1", status=ApprovalStatus.PENDING, created_at=clock.now(),
                                      expires_at=clock.now() + 600, decision="d", rule="r", fingerprint="fp",
                                      payload={}))
    await older.put_timer(Timer(id="t1", kind="verify", fingerprint="fp", due_at=clock.now() + 60,
                                expires_at=clock.now() + 600, payload={"x": 1}))
    await older.count_occurrence("o", "m1", window=600)
    await older.record_result("t", ok=False, threshold=1, cooloff=600)
    await older.close()
    await to_older_layout(client, prefix)

    store = RedisStateStore(url, clock=clock, prefix=prefix)
    await store.open()
    try:
        assert await store.backlog() == 2
        assert [i.id for i in await store.take("newer", 5, block=0)] == ["w2"]
        clock.advance(120)
        assert [(i.id, i.ref, i.deliveries) for i in await store.reclaim("newer", idle=60, count=5)] == [
            ("w1", in_flight.ref, 2)]
        assert await store.claim(["k1", "k9"], ttl=60) == [False, False]
        assert await store.get_pause() == pause
        refused = await store.admit(Budget(member="m2", cooldown_key="c", cooldown=600), spend=False)
        assert refused.verdict is Verdict.COOLDOWN
        assert token is not None
        assert await store.lock_valid("tgt", token)
        assert await store.acquire_lock("tgt", "newer", ttl=60) is None
        assert [a.id for a in await store.pending_approvals_for("fp")] == ["a1"]
        assert [t.id for t in await store.take_timers("fp", ["verify"])] == ["t1"]
        assert await store.count_occurrence("o", "m2", window=600) == 2
        assert (await store.circuit("t")).open_until is not None
        assert await migrate(store._core) == 0  # done once: a later open does not scan again

        left = sorted([k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)])
        assert left == [f"{prefix}:pause", f"{prefix}:work"]
        assert await client.get(f"{prefix}:work") == FENCE
        assert FENCE in await client.get(f"{prefix}:pause")
        with pytest.raises(ResponseError, match="WRONGTYPE"):  # an older replica's enqueue
            await client.xadd(f"{prefix}:work", {"id": "late"})
    finally:
        await store.close()


async def test_a_key_under_both_names_stops_the_open(where: tuple[str, str, Any], clock: FakeClock) -> None:
    """An older key whose new name holds data already is neither overwritten nor dropped: the open fails
    naming both, and both are still there."""
    url, prefix, client = where
    await client.set(f"{prefix}:dedup:x", "1")
    await client.set(f"{{{prefix}:queue}}:dedup:x", "2")
    store = RedisStateStore(url, clock=clock, prefix=prefix)
    with pytest.raises(StateError, match=r"both .*dedup:x.* and .*queue\}:dedup:x.* hold data"):
        await store.open()
    await store.close()
    assert await client.get(f"{prefix}:dedup:x") == "1"
    assert await client.get(f"{{{prefix}:queue}}:dedup:x") == "2"


async def test_a_fresh_prefix_is_marked_without_fences(where: tuple[str, str, Any], clock: FakeClock) -> None:
    """With nothing of an older version, opening only records the layout (no fence keys appear)."""
    url, prefix, client = where
    store = RedisStateStore(url, clock=clock, prefix=prefix)
    await store.open()
    await store.close()
    assert [k async for k in client.scan_iter(match=f"{prefix}:*")] == []
    assert await client.get(f"{{{prefix}:guards}}:layout") == "2"
