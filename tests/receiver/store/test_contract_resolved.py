"""The state store contract for closing a webhook's resolved alerts at once (``close_resolved``),
on SQLite, Redis and a Redis Cluster.

Table-driven: what is open before (approvals, timers: of which alert, in which state), the
firings closed, and what each closed; then what is left, which must be what the separate
calls (``claim``, ``decide_approval`` to cancelled, ``take_timers``) would have left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from receiver.store.protocol import StateStore
from receiver.store.values import Approval, ApprovalStatus, Resolved, Timer
from tests.receiver.store.conftest import StoreFactory, opened
from tests.support.fakeclock import FakeClock

KINDS = ["verify", "verify_late"]
Setup = Callable[[StateStore, FakeClock], Awaitable[None]]


def pending(approval_id: str, fp: str, *, ttl: float = 1800, age: float = 0) -> Setup:
    """A pending approval of alert ``fp`` requested ``age`` seconds ago, expiring ``ttl`` after."""
    async def put(store: StateStore, clock: FakeClock) -> None:
        now = clock.now() - age
        await store.put_approval(Approval(id=approval_id, status=ApprovalStatus.PENDING, created_at=now,
                                          expires_at=now + ttl, decision="d1", rule="r1", fingerprint=fp,
                                          payload={"steps": []}))
    return put


def approved(approval_id: str, fp: str) -> Setup:
    async def put(store: StateStore, clock: FakeClock) -> None:
        await pending(approval_id, fp)(store, clock)
        await store.decide_approval(approval_id, ApprovalStatus.APPROVED, actor="alice", comment=None)
    return put


def armed(timer_id: str, fp: str, *, kind: str = "verify", held: bool = False) -> Setup:
    """A timer of alert ``fp`` (``held``: due and claimed by a replica firing it)."""
    async def put(store: StateStore, clock: FakeClock) -> None:
        due = clock.now() + (0 if held else 60)
        await store.put_timer(Timer(id=timer_id, kind=kind, fingerprint=fp, due_at=due,
                                    expires_at=clock.now() + 3600, payload={"n": 1}))
        if held:
            assert [t.id for t in await store.claim_due_timers(lease=30, limit=10)] == [timer_id]
    return put


def marked(fp: str) -> Setup:
    async def claim(store: StateStore, clock: FakeClock) -> None:
        await store.claim([f"resolved\x1f{fp}"], ttl=600)
    return claim


# (open before, fingerprints of the firings closed, what each closed: [(approval id, status
#  it was moved to)], [timer ids taken]). Every firing's marker is claimed whatever it closed.
CASES = [
    pytest.param([], ["a"], [([], [])], id="nothing-open-still-marks"),
    pytest.param([pending("p1", "a")], ["a"], [([("p1", "cancelled")], [])], id="pending-is-cancelled"),
    pytest.param([pending("p1", "a", ttl=60, age=60)], ["a"], [([("p1", "expired")], [])],
                 id="past-expiry-is-expired-instead"),
    pytest.param([approved("p1", "a")], ["a"], [([], [])], id="decided-stays"),
    pytest.param([pending("p1", "b"), armed("t1", "b")], ["a"], [([], [])], id="another-alerts-stay"),
    pytest.param([armed("t1", "a"), armed("t2", "a", kind="verify_late")], ["a"], [([], ["t1", "t2"])],
                 id="timers-of-the-kinds-taken"),
    pytest.param([armed("t1", "a", kind="p1_unresolved")], ["a"], [([], [])], id="other-kinds-stay"),
    pytest.param([armed("t1", "a", held=True)], ["a"], [([], [])], id="held-timer-left-to-its-holder"),
    pytest.param([marked("a"), pending("p1", "a"), armed("t1", "a")], ["a"],
                 [([("p1", "cancelled")], ["t1"])], id="marker-there-already"),
    pytest.param([pending("p2", "a"), pending("p1", "a", age=10), armed("t1", "a"), pending("p3", "b"),
                  armed("t2", "b")], ["a", "b"],
                 [([("p1", "cancelled"), ("p2", "cancelled")], ["t1"]), ([("p3", "cancelled")], ["t2"])],
                 id="several-alerts-oldest-approval-first"),
    pytest.param([pending("p1", "a"), armed("t1", "a")], ["a", "a"],
                 [([("p1", "cancelled")], ["t1"]), ([], [])], id="same-alert-twice-closes-once"),
]


@pytest.mark.parametrize(("before", "fingerprints", "expected"), CASES)
async def test_close_resolved_marks_cancels_and_takes(
        make_store: StoreFactory, clock: FakeClock, before: list[Setup], fingerprints: list[str],
        expected: list[tuple[list[tuple[str, str]], list[str]]]) -> None:
    store = await opened(make_store)
    for setup in before:
        await setup(store, clock)
    firings = [Resolved(marker=f"resolved\x1f{fp}", fingerprint=fp) for fp in fingerprints]
    closed = await store.close_resolved(firings, ttl=600, kinds=KINDS, actor="system",
                                        comment="the alert resolved")
    got = [([(a.id, a.status.value) for a in c.approvals], [t.id for t in c.timers]) for c in closed]
    assert got == expected
    for c in closed:
        for a in c.approvals:  # as decide_approval would have moved them, and so kept
            expired = a.status is ApprovalStatus.EXPIRED
            assert (a.decided_by, a.decided_at, a.comment) == (
                "system", clock.now(), None if expired else "the alert resolved")
            assert await store.get_approval(a.id) == a
        assert [dict(t.payload) for t in c.timers] == [{"n": 1}] * len(c.timers)
    for fp in fingerprints:
        assert await store.claimed(f"resolved\x1f{fp}")
        assert await store.pending_approvals_for(fp) == []
        assert await store.take_timers(fp, KINDS) == []  # taken, or held, or of another kind
    again = await store.close_resolved(firings, ttl=600, kinds=KINDS, actor="system", comment="again")
    assert [(c.approvals, c.timers) for c in again] == [((), ())] * len(firings)


async def test_closing_nothing_is_nothing(make_store: StoreFactory) -> None:
    store = await opened(make_store)
    assert await store.close_resolved([], ttl=600, kinds=KINDS, actor="system", comment="x") == []


async def test_what_closing_leaves_open_stays_usable(make_store: StoreFactory, clock: FakeClock) -> None:
    """Another alert's approval is still decided once; a held timer is still finished by its holder;
    the marker lapses after its ttl; an id taken is not armed again."""
    store, other = await opened(make_store), await opened(make_store)
    for setup in [pending("p1", "b"), armed("t1", "a", held=True), armed("t2", "a")]:
        await setup(store, clock)
    await other.close_resolved([Resolved("resolved\x1fa", "a")], ttl=600, kinds=KINDS, actor="system",
                               comment="x")
    assert (await store.decide_approval("p1", ApprovalStatus.APPROVED, actor="bob", comment=None)).changed
    await store.finish_timer("t1")
    assert not await store.put_timer(Timer(id="t2", kind="verify", fingerprint="a", due_at=clock.now(),
                                           expires_at=clock.now() + 3600, payload={}))
    clock.advance(600)
    assert not await store.claimed("resolved\x1fa")


async def test_concurrent_closings_close_each_once(make_store: StoreFactory, clock: FakeClock) -> None:
    """Two replicas closing the same alert at once: each approval and timer is moved by one of them."""
    a, b = await opened(make_store), await opened(make_store)
    for n in range(5):
        await pending(f"p{n}", "x", age=n)(a, clock)
        await armed(f"t{n}", "x")(a, clock)
    firing = [Resolved("resolved\x1fx", "x")]
    got = await asyncio.gather(*(s.close_resolved(firing, ttl=600, kinds=KINDS, actor="system", comment="x")
                                 for s in [a, b, a, b]))
    assert sorted(ap.id for [c] in got for ap in c.approvals) == [f"p{n}" for n in range(5)]
    assert sorted(t.id for [c] in got for t in c.timers) == [f"t{n}" for n in range(5)]
