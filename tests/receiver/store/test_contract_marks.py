"""The state store contract for the execute-once markers of steps, on SQLite, Redis and a Redis Cluster.

Table-driven: a marker in a given state (or none), one ``mark_step`` with its conditions, and
what must be there after; then the properties the guard relies on: a marker seen by
another replica, one winner among concurrent claims, a lapsed marker counting as none.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from receiver.errors import StateError
from receiver.flow.guards.lock import acquire_target
from receiver.store.protocol import StateStore
from receiver.store.values import StepMark, StepState
from tests.receiver.store.conftest import StoreFactory, opened
from tests.support.fakeclock import FakeClock

CLAIMED = StepState.CLAIMED
SENDING = StepState.SENDING
DONE = StepState.DONE


def mark(state: StepState, holder: str, since: float = 1.0, outcome: str = "") -> StepMark:
    return StepMark(state=state, holder=holder, since=since, outcome=outcome,
                    evidence={"note": f"{state.value} by {holder}"})


# (there before: (state, holder) or None, the write: (state, holder) or None to remove,
#  conditions, whether it is written). The call returns that, and the marker there before.
CASES = [
    pytest.param(None, (CLAIMED, "a"), {"if_absent": True}, True, id="claim-a-free-step"),
    pytest.param((CLAIMED, "a"), (CLAIMED, "b"), {"if_absent": True}, False,
                 id="claimed-is-not-absent"),
    pytest.param((CLAIMED, "a"), (CLAIMED, "b"), {"if_absent": True, "if_claimed": True}, True,
                 id="claimed-nothing-sent-may-be-taken-over"),
    pytest.param((SENDING, "a"), (CLAIMED, "b"), {"if_absent": True, "if_claimed": True}, False,
                 id="sending-is-never-taken-as-claimed"),
    pytest.param((DONE, "a"), (CLAIMED, "b"), {"if_absent": True, "if_claimed": True}, False,
                 id="done-is-never-claimed-again"),
    pytest.param((CLAIMED, "a"), (SENDING, "a"), {"if_absent": True, "if_holder": "a"}, True,
                 id="holder-moves-claimed-to-sending"),
    pytest.param(None, (SENDING, "a"), {"if_absent": True, "if_holder": "a"}, True,
                 id="holder-sends-again-after-giving-back"),
    pytest.param((CLAIMED, "b"), (SENDING, "a"), {"if_absent": True, "if_holder": "a"}, False,
                 id="taken-over-holder-cannot-send"),
    pytest.param((SENDING, "a"), None, {"if_holder": "a"}, True, id="nothing-sent-given-back"),
    pytest.param((SENDING, "b"), None, {"if_holder": "a"}, False, id="another-holders-marker-stays"),
    pytest.param((SENDING, "a"), (DONE, "a"), {"if_holder": "a"}, True, id="outcome-recorded"),
    pytest.param((SENDING, "a"), (SENDING, "b"), {"if_holder": "a"}, True,
                 id="unknown-outcome-taken-over-by-its-holder-name"),
    pytest.param(None, (DONE, "a"), {"if_holder": "a"}, False, id="no-condition-met-writes-nothing"),
]


@pytest.mark.parametrize(("before", "write", "conditions", "written"), CASES)
async def test_mark_step_replaces_only_when_a_condition_holds(
        make_store: StoreFactory, before: tuple[StepState, str] | None,
        write: tuple[StepState, str] | None, conditions: dict[str, object], written: bool) -> None:
    store = await opened(make_store)
    there = None if before is None else mark(*before)
    if there is not None:
        assert (await store.mark_step("d1\x1f1", there, ttl=600, if_absent=True)) == (True, None)
    new = None if write is None else mark(*write, since=2.5, outcome="succeeded")
    got = await store.mark_step("d1\x1f1", new, ttl=600, **conditions)  # type: ignore[arg-type]
    assert got == (written, there)  # and the marker that was there before, either way
    assert await store.step_mark("d1\x1f1") == (new if written else there)


async def test_a_marker_is_seen_by_another_replica_and_lapses(make_store: StoreFactory,
                                                               clock: FakeClock) -> None:
    """A marker written through one store is read through another; past its TTL it is none."""
    one, two = await opened(make_store), await opened(make_store)
    sending = mark(SENDING, "a")
    await one.mark_step("k", sending, ttl=60, if_absent=True)
    assert await two.step_mark("k") == sending
    assert await two.mark_step("k", mark(CLAIMED, "b"), ttl=60, if_absent=True, if_claimed=True) == (
        False, sending)
    clock.advance(60)
    assert await two.step_mark("k") is None
    fresh = mark(CLAIMED, "b")
    assert await two.mark_step("k", fresh, ttl=60, if_absent=True) == (True, None)
    assert await one.step_mark("k") == fresh


async def test_concurrent_claims_of_a_step_have_one_winner(make_store: StoreFactory) -> None:
    """Forty runs claim one free step at once through two stores, each then moving to sending
    if it still holds it: exactly one sends."""
    one, two = await opened(make_store), await opened(make_store)

    async def run(n: int) -> bool:
        store = one if n % 2 else two
        claimed, _ = await store.mark_step("k", mark(CLAIMED, f"r{n}"), ttl=60, if_absent=True)
        if not claimed:
            return False
        sent, _ = await store.mark_step("k", mark(SENDING, f"r{n}"), ttl=60, if_absent=True,
                                        if_holder=f"r{n}")
        return sent

    assert sum(await asyncio.gather(*(run(n) for n in range(40)))) == 1


async def test_markers_are_apart_from_dedup_claims(make_store: StoreFactory) -> None:
    """A step's marker and a dedup claim of the same name do not see each other."""
    store = await opened(make_store)
    await store.mark_step("same", mark(DONE, "a"), ttl=60, if_absent=True)
    assert await store.claim(["same"], ttl=60) == [True]
    await store.release(["same"])
    assert (await store.step_mark("same")) == mark(DONE, "a")


async def test_a_lock_is_broken_only_for_the_owner_named(make_store: StoreFactory, clock: FakeClock) -> None:
    """``breaking`` takes over a live lock held by that owner (a run whose step was taken over),
    never one held by another owner; the token still grows."""
    one, two = await opened(make_store), await opened(make_store)
    dead = await one.acquire_lock("tgt", "host-1/run-a", ttl=600)
    assert dead is not None
    assert await two.acquire_lock("tgt", "host-2/run-b", ttl=600, breaking="host-1/run-x") is None
    taken = await two.acquire_lock("tgt", "host-2/run-b", ttl=600, breaking="host-1/run-a")
    assert taken is not None
    assert taken > dead
    assert await one.lock_valid("tgt", dead) is False
    assert await two.acquire_lock("tgt", "host-3/run-c", ttl=600, breaking="host-1/run-a") is None
    clock.advance(600)
    assert await two.acquire_lock("tgt", "host-3/run-c", ttl=60) is not None


class AnswerLost:
    """A store whose first ``acquire_lock`` runs, then fails as a lost answer would (the store took
    the lock; the caller hears only a StateError). Everything else goes to ``store``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def acquire_lock(self, key: str, owner: str, *, ttl: float,
                           breaking: str | None = None) -> int | None:
        token = await self._store.acquire_lock(key, owner, ttl=ttl, breaking=breaking)
        if not self.lost:
            self.lost = True
            raise StateError(f"the answer to acquire_lock was lost (token {token})")
        return token


@pytest.mark.parametrize("held_by_another", [False, True], ids=["free", "held-by-another"])
async def test_a_lock_whose_answer_was_lost_is_let_go(make_store: StoreFactory, clock: FakeClock,
                                                     held_by_another: bool) -> None:
    """An acquire the store ran but whose answer the run never got is a StateError to the run, and
    the run lets go of the hold it may have got: the target is free for the next run at once, not
    after the lock's TTL. A lock another run holds is left as it is."""
    one, two = await opened(make_store), await opened(make_store)
    other = await one.acquire_lock("tgt", "host-2/run-b", ttl=600) if held_by_another else None
    lossy = AnswerLost(two)
    with pytest.raises(StateError, match="answer to acquire_lock was lost"):
        await acquire_target(cast(StateStore, lossy), "tgt", owner="host-1/run-a", ttl=600)
    assert lossy.lost
    if other is not None:
        assert await one.lock_valid("tgt", other) is True
        assert await one.acquire_lock("tgt", "host-3/run-c", ttl=60) is None
    else:
        assert await one.acquire_lock("tgt", "host-3/run-c", ttl=60) is not None
