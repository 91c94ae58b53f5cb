"""The state store contract: one suite, run against SQLite, a real local Redis and a real Redis Cluster.

Every behaviour the guards and the work queue rely on is checked here on both stores,
with the injected clock moving time (no real sleeping).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from receiver.errors import StateError
from receiver.store.values import (
    Approval,
    ApprovalStatus,
    BacklogFull,
    Budget,
    Pause,
    Timer,
    Verdict,
    WorkItem,
)
from tests.receiver.store.conftest import StoreFactory, opened
from tests.support.fakeclock import FakeClock


def approval(approval_id: str, clock: FakeClock, *, fp: str = "fp1", ttl: float = 1800) -> Approval:
    return Approval(id=approval_id, status=ApprovalStatus.PENDING, created_at=clock.now(),
                    expires_at=clock.now() + ttl, decision="d1", rule="r1", fingerprint=fp,
                    payload={"steps": [{"action": "notify.log", "params": {"text": "x"}}]})


async def test_claims_are_first_wins_expire_and_release(make_store: StoreFactory, clock: FakeClock) -> None:
    """A key is claimed once until its TTL passes or it is released."""
    store = await opened(make_store)
    assert await store.claim(["a", "b", "a"], ttl=60) == [True, True, False]
    assert await store.claim(["a"], ttl=60) == [False]
    clock.advance(60)
    assert await store.claim(["a"], ttl=60) == [True]
    await store.release(["a", "b"])
    assert await store.claim(["a", "b"], ttl=60) == [True, True]


async def test_claimed_reads_a_claim_without_making_one(make_store: StoreFactory, clock: FakeClock) -> None:
    """``claimed`` sees a live claim through any replica, not a lapsed or released one, and claims nothing."""
    one, two = await opened(make_store), await opened(make_store)
    assert await two.claimed("k") is False
    assert await one.claim(["k"], ttl=60) == [True]  # the read above claimed nothing
    assert await two.claimed("k") is True
    clock.advance(60)
    assert await one.claimed("k") is False
    assert await one.claim(["k"], ttl=60) == [True]
    await two.release(["k"])
    assert await one.claimed("k") is False


async def test_claims_are_seen_by_another_replica(make_store: StoreFactory) -> None:
    """A claim made through one store is refused through another on the same state."""
    one, two = await opened(make_store), await opened(make_store)
    assert await one.claim(["k"], ttl=600) == [True]
    assert await two.claim(["k"], ttl=600) == [False]


async def test_concurrent_claims_have_one_winner(make_store: StoreFactory) -> None:
    """Fifty concurrent claims of one key through two stores: exactly one wins."""
    one, two = await opened(make_store), await opened(make_store)
    results = await asyncio.gather(*((one if i % 2 else two).claim(["same"], ttl=60) for i in range(50)))
    assert sum(r[0] for r in results) == 1


async def test_enqueue_extends_claims_and_work_flows(make_store: StoreFactory, clock: FakeClock) -> None:
    """Enqueued work is taken once, in order; enqueue turns a short claim into a long one."""
    store = await opened(make_store)
    assert await store.claim(["k1", "k2"], ttl=30) == [True, True]
    items = [WorkItem(id=f"d{i}", payload={"n": i}, dedup_key=f"k{i}") for i in (1, 2)]
    await store.enqueue(items, ttl=3600, max_backlog=10)
    clock.advance(60)
    assert await store.claim(["k1", "k2"], ttl=30) == [False, False]  # extended to an hour
    assert await store.backlog() == 2
    taken = await store.take("c1", 10, block=0)
    got = [(i.id, dict(i.payload), i.deliveries) for i in taken]
    assert got == [("d1", {"n": 1}, 1), ("d2", {"n": 2}, 1)]
    assert await store.take("c2", 10, block=0) == []
    await store.complete([i.ref for i in taken])
    assert await store.backlog() == 0


async def test_oldest_work_is_when_the_oldest_item_was_enqueued(make_store: StoreFactory,
                                                                 clock: FakeClock) -> None:
    """The backlog's oldest item's enqueue time (the clock's), taken or not, until it completes."""
    store = await opened(make_store)
    assert await store.oldest_work() is None
    first = clock.now()
    await store.enqueue([WorkItem(id="a", payload={})], ttl=3600, max_backlog=10)
    clock.advance(30)
    later = [WorkItem(id="b", payload={}), WorkItem(id="c", payload={})]
    await store.enqueue(later, ttl=3600, max_backlog=10)
    taken = await store.take("c1", 1, block=0)
    assert [i.id for i in taken] == ["a"]
    assert await store.oldest_work() == pytest.approx(first)  # being worked on still counts
    await store.complete([taken[0].ref])
    assert await store.oldest_work() == pytest.approx(first + 30)
    rest = await store.take("c1", 10, block=0)
    await store.complete([i.ref for i in rest])
    assert await store.oldest_work() is None


async def test_backlog_full_adds_nothing(make_store: StoreFactory) -> None:
    """An enqueue that would pass the backlog limit raises and adds none of its items."""
    store = await opened(make_store)
    await store.enqueue([WorkItem(id="a", payload={})], ttl=60, max_backlog=2)
    with pytest.raises(BacklogFull):
        await store.enqueue([WorkItem(id="b", payload={}), WorkItem(id="c", payload={})],
                            ttl=60, max_backlog=2)
    assert await store.backlog() == 1


async def test_take_waits_for_work(make_store: StoreFactory) -> None:
    """A blocking take returns as soon as work is enqueued, not at its timeout."""
    store = await opened(make_store)
    waiting = asyncio.create_task(store.take("c1", 5, block=5))
    await asyncio.sleep(0.05)
    await store.enqueue([WorkItem(id="w", payload={"x": 1})], ttl=60, max_backlog=10)
    async with asyncio.timeout(3):
        taken = await waiting
    assert [i.id for i in taken] == ["w"]


async def test_idle_work_is_reclaimed_and_touch_keeps_it(make_store: StoreFactory, clock: FakeClock) -> None:
    """Work a consumer stopped touching is reclaimed by another; touched work is not."""
    store = await opened(make_store)
    await store.enqueue([WorkItem(id="a", payload={}), WorkItem(id="b", payload={})], ttl=60, max_backlog=10)
    _a, b = await store.take("dead", 1, block=0) + await store.take("alive", 1, block=0)
    clock.advance(50)
    await store.touch("alive", [b.ref])
    clock.advance(20)
    reclaimed = await store.reclaim("rescuer", idle=60, count=10)
    assert [(i.id, i.deliveries) for i in reclaimed] == [("a", 2)]
    assert await store.reclaim("other", idle=60, count=10) == []


async def test_concurrent_takes_and_reclaims_hand_out_each_item_once(make_store: StoreFactory,
                                                                      clock: FakeClock) -> None:
    """Replicas taking, then rescuing idle work, all at once: every item goes to exactly one consumer."""
    one, two = await opened(make_store), await opened(make_store)
    expected = sorted(f"w{i:02}" for i in range(20))
    await one.enqueue([WorkItem(id=i, payload={}) for i in expected], ttl=60, max_backlog=100)
    taken = await asyncio.gather(*((one if i % 2 else two).take(f"c{i}", 3, block=0) for i in range(10)))
    assert sorted(item.id for batch in taken for item in batch) == expected
    clock.advance(120)
    rescued = await asyncio.gather(*((one if i % 2 else two).reclaim(f"r{i}", idle=60, count=5)
                                     for i in range(10)))
    assert sorted(item.id for batch in rescued for item in batch) == expected


async def test_pause_is_set_once_and_cleared(make_store: StoreFactory, clock: FakeClock) -> None:
    """Only the first pause wins; resume returns what was lifted; every replica sees it."""
    one, two = await opened(make_store), await opened(make_store)
    first = Pause(source="admin", actor="ops", detail="incident", since=clock.now())
    assert await one.set_pause(first) is True
    assert await two.set_pause(Pause(source="blast_radius", actor="system", detail="x", since=1)) is False
    assert await two.get_pause() == first
    assert await two.clear_pause() == first
    assert await one.get_pause() is None
    assert await one.clear_pause() is None


@pytest.mark.parametrize(("spent_ago", "verdict"), [
    pytest.param(None, Verdict.OK, id="never-spent"),
    pytest.param(10.0, Verdict.COOLDOWN, id="inside-cooldown"),
    pytest.param(600.0, Verdict.OK, id="cooldown-over"),
])
async def test_cooldown(make_store: StoreFactory, clock: FakeClock, spent_ago: float | None,
                        verdict: Verdict) -> None:
    """A spent cooldown blocks the same key until it has passed."""
    store = await opened(make_store)
    budget = Budget(member="m0", cooldown_key="r/t", cooldown=600)
    if spent_ago is not None:
        assert (await store.admit(budget, spend=True)).verdict is Verdict.OK
        clock.advance(spent_ago)
    result = await store.admit(Budget(member="m1", cooldown_key="r/t", cooldown=600), spend=False)
    assert result.verdict is verdict
    if verdict is Verdict.COOLDOWN:
        assert result.retry_after == pytest.approx(590)


async def test_peek_spends_nothing(make_store: StoreFactory) -> None:
    """admit(spend=False) never uses up a budget."""
    store = await opened(make_store)
    budget = Budget(member="m", cooldown_key="c", cooldown=60, rate_key="r", rate_max=1, rate_window=60)
    for _ in range(3):
        assert (await store.admit(budget, spend=False)).verdict is Verdict.OK


@pytest.mark.parametrize(("spends", "check_after", "verdict"), [
    pytest.param([0, 0], 0, Verdict.OK, id="two-of-three"),
    pytest.param([0, 0, 0], 0, Verdict.RATE_LIMIT, id="three-of-three"),
    pytest.param([0, 0, 0], 61, Verdict.OK, id="window-slid-past"),
    pytest.param([0, 30, 20], 9, Verdict.RATE_LIMIT, id="sliding-not-fixed-inside"),
    pytest.param([0, 30, 20], 11, Verdict.OK, id="sliding-not-fixed-after-oldest"),
])
async def test_rate_limit_is_a_sliding_window(make_store: StoreFactory, clock: FakeClock, spends: list[float],
                                              check_after: float, verdict: Verdict) -> None:
    """At most 3 spends per 60 s, counted back from now: one spend after each gap, then the check."""
    store = await opened(make_store)
    for gap in spends:
        clock.advance(gap)
        await store.admit(Budget(member=uuid.uuid4().hex, rate_key="rule", rate_max=3, rate_window=60),
                          spend=True)
    clock.advance(check_after)
    result = await store.admit(Budget(member="x", rate_key="rule", rate_max=3, rate_window=60), spend=False)
    assert result.verdict is verdict


async def test_budgets_are_spent_all_or_nothing(make_store: StoreFactory) -> None:
    """When the blast radius refuses, neither the cooldown nor the rate slot is spent."""
    store = await opened(make_store)
    await store.admit(Budget(member="a", blast_max=1, blast_window=600), spend=True)
    refused = await store.admit(Budget(member="b", cooldown_key="c", cooldown=600, rate_key="r",
                                       rate_max=1, rate_window=600, blast_max=1, blast_window=600),
                                spend=True)
    assert refused.verdict is Verdict.BLAST_RADIUS
    after = await store.admit(Budget(member="c", cooldown_key="c", cooldown=600, rate_key="r",
                                     rate_max=1, rate_window=600), spend=False)
    assert after.verdict is Verdict.OK


async def test_a_member_pays_once(make_store: StoreFactory) -> None:
    """The execution that spent a budget is admitted again without spending it twice."""
    store = await opened(make_store)
    budget = Budget(member="d1:1", cooldown_key="c", cooldown=600, rate_key="r", rate_max=2,
                    rate_window=600, blast_max=2, blast_window=600)
    for _ in range(3):
        assert (await store.admit(budget, spend=True)).verdict is Verdict.OK
    other = Budget(member="d2:1", rate_key="r", rate_max=2, rate_window=600, blast_max=2, blast_window=600)
    assert (await store.admit(other, spend=True)).verdict is Verdict.OK  # 2 of 2, not 4 of 2
    again = Budget(member="d3:1", cooldown_key="c", cooldown=600)
    assert (await store.admit(again, spend=False)).verdict is Verdict.COOLDOWN


async def test_concurrent_admits_spend_a_budget_once(make_store: StoreFactory) -> None:
    """Twenty concurrent spends of one cooldown through two stores: one is admitted."""
    one, two = await opened(make_store), await opened(make_store)
    results = await asyncio.gather(*(
        (one if i % 2 else two).admit(Budget(member=f"m{i}", cooldown_key="same", cooldown=60), spend=True)
        for i in range(20)
    ))
    assert sum(r.verdict is Verdict.OK for r in results) == 1


async def test_circuit_opens_at_threshold_and_cools_off(make_store: StoreFactory, clock: FakeClock) -> None:
    """N consecutive failures open the circuit for the cool-off; a success or a reset closes it."""
    store = await opened(make_store)
    for n in (1, 2):
        c = await store.record_result("t", ok=False, threshold=3, cooloff=300)
        assert (c.failures, c.is_open(clock.now())) == (n, False)
    c = await store.record_result("t", ok=False, threshold=3, cooloff=300)
    assert c.is_open(clock.now())
    assert (await store.circuit("t")).is_open(clock.now())
    assert not (await store.circuit("other")).is_open(clock.now())
    clock.advance(301)
    assert not (await store.circuit("t")).is_open(clock.now())
    assert (await store.reset_circuit("t")).failures == 3
    assert (await store.circuit("t")).failures == 0
    await store.record_result("t", ok=False, threshold=3, cooloff=300)
    await store.record_result("t", ok=True, threshold=3, cooloff=300)
    assert (await store.circuit("t")).failures == 0


async def test_locks_exclude_expire_and_fence(make_store: StoreFactory, clock: FakeClock) -> None:
    """A lock excludes others until released or expired; each new holder gets a larger token."""
    one, two = await opened(make_store), await opened(make_store)
    t1 = await one.acquire_lock("tgt", "r1", ttl=60)
    assert t1 is not None
    assert await two.acquire_lock("tgt", "r2", ttl=60) is None
    assert await two.lock_valid("tgt", t1)
    clock.advance(61)
    t2 = await two.acquire_lock("tgt", "r2", ttl=60)
    assert t2 is not None
    assert t2 > t1
    assert not await one.lock_valid("tgt", t1)  # fenced: the stale holder must not act
    await one.release_lock("tgt", t1)  # a stale release does nothing
    assert await two.lock_valid("tgt", t2)
    await two.release_lock("tgt", t2)
    t3 = await one.acquire_lock("tgt", "r1", ttl=60)
    assert t3 is not None
    assert t3 > t2


async def test_approvals_decide_once(make_store: StoreFactory, clock: FakeClock) -> None:
    """An approval moves out of pending once; a second decision sees it unchanged."""
    one, two = await opened(make_store), await opened(make_store)
    await one.put_approval(approval("ap1", clock))
    assert (await two.get_approval("ap1")) == approval("ap1", clock)
    results = await asyncio.gather(
        one.decide_approval("ap1", ApprovalStatus.APPROVED, actor="alice", comment="go"),
        two.decide_approval("ap1", ApprovalStatus.APPROVED, actor="bob", comment=None),
    )
    assert sorted(r.changed for r in results) == [False, True]
    final = await one.get_approval("ap1")
    assert final is not None
    assert final.status is ApprovalStatus.APPROVED
    assert final.decided_by in {"alice", "bob"}
    again = await two.decide_approval("ap1", ApprovalStatus.REJECTED, actor="carol", comment=None)
    assert not again.changed
    assert again.approval is not None
    assert again.approval.status is ApprovalStatus.APPROVED
    missing = await one.decide_approval("nope", ApprovalStatus.APPROVED, actor="a", comment=None)
    assert missing.approval is None
    assert not missing.changed


async def test_expired_approval_cannot_be_approved(make_store: StoreFactory, clock: FakeClock) -> None:
    """Approving past the expiry expires it instead."""
    store = await opened(make_store)
    await store.put_approval(approval("ap2", clock, ttl=60))
    clock.advance(61)
    result = await store.decide_approval("ap2", ApprovalStatus.APPROVED, actor="alice", comment=None)
    assert not result.changed
    assert result.approval is not None
    assert result.approval.status is ApprovalStatus.EXPIRED


async def test_approvals_listed_and_found_by_fingerprint(make_store: StoreFactory, clock: FakeClock) -> None:
    """Listing filters by status, newest first; pending ones are found by alert fingerprint."""
    store = await opened(make_store)
    await store.put_approval(approval("old", clock, fp="A"))
    clock.advance(1)
    await store.put_approval(approval("new", clock, fp="A"))
    clock.advance(1)
    await store.put_approval(approval("other", clock, fp="B"))
    await store.decide_approval("old", ApprovalStatus.REJECTED, actor="x", comment=None)
    assert [a.id for a in await store.list_approvals()] == ["other", "new", "old"]
    assert [a.id for a in await store.list_approvals([ApprovalStatus.PENDING])] == ["other", "new"]
    assert [a.id for a in await store.pending_approvals_for("A")] == ["new"]


async def test_an_approval_id_is_put_once(make_store: StoreFactory, clock: FakeClock) -> None:
    """Putting an approval whose id exists raises StateError and keeps the first record."""
    store = await opened(make_store)
    await store.put_approval(approval("ap", clock, fp="A"))
    with pytest.raises(StateError):
        await store.put_approval(approval("ap", clock, fp="B"))
    kept = await store.get_approval("ap")
    assert kept is not None
    assert kept.fingerprint == "A"


async def test_state_survives_reopen(make_store: StoreFactory, clock: FakeClock) -> None:
    """Claims, pauses, cooldowns, approvals and unfinished work outlive a restart."""
    first = await opened(make_store)
    await first.claim(["k"], ttl=600)
    await first.set_pause(Pause(source="admin", actor="a", detail="d", since=clock.now()))
    await first.admit(Budget(member="m", cooldown_key="c", cooldown=600), spend=True)
    await first.put_approval(approval("ap", clock))
    await first.enqueue([WorkItem(id="w", payload={})], ttl=600, max_backlog=10)
    await first.take("crashed", 1, block=0)
    await first.close()
    second = await opened(make_store)
    assert await second.claim(["k"], ttl=600) == [False]
    assert await second.get_pause() is not None
    assert (await second.admit(Budget(member="n", cooldown_key="c", cooldown=600),
                               spend=False)).verdict is Verdict.COOLDOWN
    assert await second.get_approval("ap") is not None
    assert [i.id for i in await second.reclaim("restarted", idle=0, count=10)] == ["w"]


def timer(timer_id: str, clock: FakeClock, *, due: float = 60, fp: str = "fp1", kind: str = "verify",
          keep: float = 3600) -> Timer:
    return Timer(id=timer_id, kind=kind, fingerprint=fp, due_at=clock.now() + due,
                 expires_at=clock.now() + keep, payload={"rule": "r1", "n": 1})


async def test_a_timer_fires_once_when_due_and_never_again(make_store: StoreFactory,
                                                           clock: FakeClock) -> None:
    """Armed once per id; claimed by one caller when due; a finished timer is not armed again."""
    store = await opened(make_store)
    assert await store.put_timer(timer("t1", clock))
    assert not await store.put_timer(timer("t1", clock, due=5))
    assert await store.claim_due_timers(lease=30, limit=10) == []
    clock.advance(60)
    [got] = await store.claim_due_timers(lease=30, limit=10)
    assert (got.id, got.kind, got.fingerprint, dict(got.payload), got.claims) == (
        "t1", "verify", "fp1", {"rule": "r1", "n": 1}, 1)
    assert await store.claim_due_timers(lease=30, limit=10) == []
    await store.finish_timer("t1")
    clock.advance(3600)
    assert await store.claim_due_timers(lease=30, limit=10) == []


async def test_a_finished_timer_is_not_armed_again_until_it_expires(make_store: StoreFactory,
                                                                    clock: FakeClock) -> None:
    store = await opened(make_store)
    assert await store.put_timer(timer("t1", clock, due=0, keep=100))
    [_] = await store.claim_due_timers(lease=30, limit=10)
    await store.finish_timer("t1")
    assert not await store.put_timer(timer("t1", clock, due=0, keep=100))
    clock.advance(100)
    assert await store.put_timer(timer("t1", clock, due=0, keep=100))
    assert [t.id for t in await store.claim_due_timers(lease=30, limit=10)] == ["t1"]


async def test_a_timer_not_finished_within_its_lease_is_due_again(make_store: StoreFactory,
                                                                  clock: FakeClock) -> None:
    """The replica that claimed it died: after the lease another takes it (claims counts both)."""
    store = await opened(make_store)
    other = await opened(make_store)
    await store.put_timer(timer("t1", clock, due=0))
    [first] = await store.claim_due_timers(lease=30, limit=10)
    clock.advance(29)
    assert await other.claim_due_timers(lease=30, limit=10) == []
    clock.advance(1)
    [again] = await other.claim_due_timers(lease=30, limit=10)
    assert (first.claims, again.claims) == (1, 2)


async def test_due_timers_come_in_due_order_up_to_the_limit(make_store: StoreFactory,
                                                            clock: FakeClock) -> None:
    store = await opened(make_store)
    for n, due in enumerate([30, 10, 20]):
        await store.put_timer(timer(f"t{n}", clock, due=due))
    clock.advance(30)
    assert [t.id for t in await store.claim_due_timers(lease=30, limit=2)] == ["t1", "t2"]
    assert [t.id for t in await store.claim_due_timers(lease=30, limit=2)] == ["t0"]


async def test_two_replicas_claiming_at_once_share_the_due_timers(make_store: StoreFactory,
                                                                  clock: FakeClock) -> None:
    """Every due timer goes to exactly one of two concurrent claimers."""
    a, b = await opened(make_store), await opened(make_store)
    for n in range(20):
        await a.put_timer(timer(f"t{n:02}", clock, due=0))
    got = await asyncio.gather(*(s.claim_due_timers(lease=30, limit=3) for s in [a, b] * 10))
    ids = [t.id for batch in got for t in batch]
    assert sorted(ids) == [f"t{n:02}" for n in range(20)]


async def test_taking_an_alerts_timers_disarms_them(make_store: StoreFactory, clock: FakeClock) -> None:
    """The alert resolved: its timers of the kinds asked for are taken once, others stay; a held
    timer is not taken (its holder is firing it), unless its lease ran out."""
    store = await opened(make_store)
    await store.put_timer(timer("w1", clock, fp="fp1"))
    await store.put_timer(timer("late", clock, fp="fp1", kind="late"))
    await store.put_timer(timer("p1", clock, fp="fp1", kind="p1", due=0))
    await store.put_timer(timer("w2", clock, fp="fp2"))
    assert await store.take_timers("fp1", []) == []
    assert sorted(t.id for t in await store.take_timers("fp1", ["verify", "late"])) == ["late", "w1"]
    assert await store.take_timers("fp1", ["verify", "late"]) == []
    [held] = await store.claim_due_timers(lease=30, limit=10)
    assert held.id == "p1"
    assert await store.take_timers("fp1", ["p1"]) == []
    clock.advance(30)
    assert [t.id for t in await store.take_timers("fp1", ["p1"])] == ["p1"]
    assert await store.claim_due_timers(lease=30, limit=10) == []
    clock.advance(60)
    assert [t.id for t in await store.claim_due_timers(lease=30, limit=10)] == ["w2"]
    assert not await store.put_timer(timer("w1", clock))


async def test_timers_armed_together_answer_as_one_after_the_other(make_store: StoreFactory,
                                                                   clock: FakeClock) -> None:
    """``put_timers``: one call, each timer's answer as if armed alone in order: an armed id and a
    live tombstone refuse, an expired tombstone is armed again, an id given twice is armed by
    the first (its due time wins); the timers armed are stored whole, on every alert's index."""
    store = await opened(make_store)
    assert await store.put_timers([]) == []
    assert await store.put_timer(timer("armed", clock))
    assert await store.put_timer(timer("done", clock, due=0, keep=600))
    assert await store.put_timer(timer("gone", clock, due=0, keep=10))
    assert {t.id for t in await store.claim_due_timers(lease=5, limit=10)} == {"done", "gone"}
    await store.finish_timer("done")
    await store.finish_timer("gone")
    clock.advance(10)
    flags = await store.put_timers([
        timer("armed", clock, due=1), timer("done", clock, due=0), timer("gone", clock, due=0, fp="fp2"),
        timer("new", clock, due=5, fp="fp2"), timer("new", clock, due=0, fp="fp3")])
    assert flags == [False, False, True, True, False]
    assert [t.id for t in await store.claim_due_timers(lease=5, limit=10)] == ["gone"]
    await store.finish_timer("gone")
    clock.advance(5)
    [new] = await store.claim_due_timers(lease=5, limit=10)
    assert (new.id, new.fingerprint, dict(new.payload)) == ("new", "fp2", {"rule": "r1", "n": 1})
    assert await store.take_timers("fp3", ["verify"]) == []
    clock.advance(50)
    assert [t.id for t in await store.take_timers("fp1", ["verify"])] == ["armed"]


async def test_timers_survive_a_restart(make_store: StoreFactory, clock: FakeClock) -> None:
    store = await opened(make_store)
    await store.put_timer(timer("t1", clock))
    await store.close()
    again = await opened(make_store)
    clock.advance(60)
    assert [t.id for t in await again.claim_due_timers(lease=30, limit=10)] == ["t1"]


async def test_occurrences_count_distinct_members_in_a_sliding_window(make_store: StoreFactory,
                                                                      clock: FakeClock) -> None:
    store = await opened(make_store)
    assert await store.count_occurrence("k", "a", window=100) == 1
    assert await store.count_occurrence("k", "a", window=100) == 1
    clock.advance(50)
    assert await store.count_occurrence("k", "b", window=100) == 2
    assert await store.count_occurrence("other", "a", window=100) == 1
    clock.advance(50)
    assert await store.count_occurrence("k", "c", window=100) == 2
    clock.advance(100)
    assert await store.count_occurrence("k", "d", window=100) == 1
