"""The Redis store's ``close_resolved`` beyond the shared contract: one round trip, and a part
that fails does not hide what the others did.

Runs against the real local Redis on a key prefix of its own, dropped after.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from receiver.store.redis.store import RedisStateStore
from receiver.store.values import ApprovalStatus, PartlyClosed, Resolved
from tests.support.fakeclock import FakeClock
from tests.support.redisdb import REDIS_URL, drop_prefix, raw_client
from tests.support.redisnodes import start_sentinel
from tests.support.resolving import arm

KINDS = ["verify"]


@pytest.fixture
async def store(clock: FakeClock) -> AsyncIterator[RedisStateStore]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    store = RedisStateStore(REDIS_URL, clock=clock, prefix=prefix)
    await store.open()
    yield store
    await store.close()
    await drop_prefix(prefix)


async def test_every_alert_of_a_request_closes_in_one_round_trip(store: RedisStateStore, clock: FakeClock,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """One pipeline (one MULTI of three scripts by SHA, one per part) whatever the number of alerts."""
    for fp in ("a", "b", "c"):
        await arm(store, clock, fp, approval_for=60)
    await store._core.load(["CLAIM", "CANCEL_PENDING", "TAKE_RESOLVED"])  # what a server keeps loaded
    sent: list[list[Any]] = []
    pipeline = type(store._core.conn().pipeline())
    real = pipeline.execute

    async def execute(self: Any, raise_on_error: bool = True) -> Any:
        sent.append([args[0] for args, _ in self.command_stack])
        return await real(self, raise_on_error=raise_on_error)

    monkeypatch.setattr(pipeline, "execute", execute)
    closed = await store.close_resolved([Resolved(f"m-{fp}", fp) for fp in ("a", "b", "c")], ttl=60,
                                        kinds=KINDS, actor="system", comment="x")
    assert sent == [["MULTI", "EVALSHA", "EVALSHA", "EVALSHA", "EXEC"]]
    assert [([a.id for a in c.approvals], [t.id for t in c.timers]) for c in closed] == [
        ([f"p-{fp}"], [f"t-{fp}"]) for fp in ("a", "b", "c")]


async def test_a_part_that_fails_hands_back_what_the_others_closed(store: RedisStateStore,
                                                                   clock: FakeClock) -> None:
    """The approvals' script fails (a key of the wrong type): the marker is claimed and the timers
    are taken all the same, and ``PartlyClosed`` says which, so that they are audited."""
    await arm(store, clock, "a", approval_for=60)
    client = raw_client(REDIS_URL)
    try:
        await client.set(store._core.key("approvals", "approvals", "pending", "a"), "not a set")
        with pytest.raises(PartlyClosed, match="WRONGTYPE") as failed:
            await store.close_resolved([Resolved("m-a", "a")], ttl=60, kinds=KINDS, actor="system",
                                       comment="x")
    finally:
        await client.aclose()
    [closed] = failed.value.closed
    assert (closed.approvals, [t.id for t in closed.timers]) == ((), ["t-a"])
    assert await store.claimed("m-a")
    approval = await store.get_approval("p-a")
    assert approval is not None
    assert approval.status is ApprovalStatus.PENDING


@pytest.mark.parametrize(("lost", "ran_twice"), [("TAKE_RESOLVED", False), ("CLAIM", True)])
async def test_a_script_the_server_lost_is_loaded_and_run_again_markers_first(
        store: RedisStateStore, clock: FakeClock, lost: str, ran_twice: bool) -> None:
    """NOSCRIPT for one script of the MULTI (the others ran): it and those after it run again once
    loaded, so the timers are still taken after the markers; each thing closed is reported once."""
    await arm(store, clock, "a", approval_for=60)
    script = store._core._scripts[lost]
    script.sha = "0" * 40  # as if the server had lost it
    runs: list[int] = []
    real = store._core.run_all

    async def run_all(calls: Any) -> Any:
        runs.append(len(calls))
        return await real(calls)

    store._core.run_all = run_all  # type: ignore[method-assign]
    [closed] = await store.close_resolved([Resolved("m-a", "a")], ttl=60, kinds=KINDS, actor="system",
                                          comment="x")
    assert runs == [3, 3 if ran_twice else 1]
    assert script.sha != "0" * 40
    assert ([a.id for a in closed.approvals], [t.id for t in closed.timers]) == (["p-a"], ["t-a"])
    assert await store.claimed("m-a")


async def test_with_replicas_the_multi_waits_and_says_what_the_master_closed(clock: FakeClock) -> None:
    """``replicas=1`` on a Sentinel master: WAIT follows the MULTI; once no replica confirms,
    ``PartlyClosed`` carries what the master did close (audited, and the resolution comes again)."""
    made = start_sentinel()
    store = RedisStateStore(made.nodes.url, clock=clock, prefix="test-replicas")
    sentinels: list[Any] = []
    try:
        await store.open()
        sentinels = store._core.conn().connection_pool.sentinel_manager.sentinels
        await arm(store, clock, "a", approval_for=60)
        await arm(store, clock, "b", approval_for=60)
        [closed] = await store.close_resolved([Resolved("m-a", "a")], ttl=60, kinds=KINDS, actor="system",
                                              comment="x")
        assert ([a.id for a in closed.approvals], [t.id for t in closed.timers]) == (["p-a"], ["t-a"])
        made.nodes.kill(next(p for p in made.data_ports if p != made.master()))
        with pytest.raises(PartlyClosed, match="replicas") as failed:
            await store.close_resolved([Resolved("m-b", "b")], ttl=60, kinds=KINDS, actor="system",
                                       comment="x")
        [closed] = failed.value.closed
        assert ([a.id for a in closed.approvals], [t.id for t in closed.timers]) == (["p-b"], ["t-b"])
    finally:
        await store.close()
        for sentinel in sentinels:  # RedisCore.close leaves the Sentinel's own connections open
            await sentinel.aclose()
        made.nodes.stop()
