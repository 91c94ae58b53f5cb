"""The deferral decision (``receiver.flow.deferral.plan``), table-driven and pure: which stops
wait, until when, and where waiting ends in a human being asked."""

from __future__ import annotations

import pytest

from receiver.decisions import Guard, Reason
from receiver.flow.codec import Deferral
from receiver.flow.deferral import Bound, GiveUp, Wait, plan
from receiver.flow.report import Ending
from receiver.store.values import WorkItem

NOW = 1_000_000.0
BOUND = Bound(max_wait=600.0, max_attempts=5, retry=1.0, max_delay=30.0)
OPEN = Ending.blocked(Guard.CIRCUIT_BREAKER, Reason.CIRCUIT_OPEN, "open", retry_after=42.0)
TRIAL = Ending.blocked(Guard.CIRCUIT_BREAKER, Reason.CIRCUIT_TRIAL, "half-open")
LOCKED = Ending.blocked(Guard.TARGET_LOCK, Reason.TARGET_LOCKED, "held")


def before(attempts: int, waited: float, guard: Guard = Guard.TARGET_LOCK,
           reason: Reason = Reason.TARGET_LOCKED) -> Deferral:
    return Deferral(attempts=attempts, since=NOW - waited, guard=guard.value, reason=reason.value)


@pytest.mark.parametrize(("ending", "deferral", "expected"), [
    pytest.param(OPEN, None, Wait(NOW + 42, Deferral(1, NOW, "circuit_breaker", "circuit_open")),
                 id="open-circuit-waits-until-it-half-opens"),
    pytest.param(LOCKED, None, Wait(NOW + 1, Deferral(1, NOW, "target_lock", "target_locked")),
                 id="held-lock-waits-the-first-retry"),
    pytest.param(LOCKED, before(3, 7), Wait(NOW + 8, Deferral(4, NOW - 7, "target_lock", "target_locked")),
                 id="held-lock-doubles"),
    pytest.param(TRIAL, before(4, 20, Guard.CIRCUIT_BREAKER, Reason.CIRCUIT_OPEN),
                 Wait(NOW + 16, Deferral(5, NOW - 20, "circuit_breaker", "circuit_trial")),
                 id="half-open-trial-running-backs-off"),
    pytest.param(LOCKED, before(4, 0), Wait(NOW + 16, Deferral(5, NOW, "target_lock", "target_locked")),
                 id="under-max-delay"),
    pytest.param(LOCKED, Deferral(4, NOW, "target_lock", "target_locked"),
                 Wait(NOW + 16, Deferral(5, NOW, "target_lock", "target_locked")), id="last-attempt-allowed"),
    pytest.param(LOCKED, before(5, 10), GiveUp(5, 10), id="max-attempts-reached"),
    pytest.param(OPEN, before(2, 600), GiveUp(2, 600), id="max-wait-reached"),
    pytest.param(OPEN, before(1, 590),
                 Wait(NOW + 10, Deferral(2, NOW - 590, "circuit_breaker", "circuit_open")),
                 id="never-waits-past-the-bound-one-last-try-at-it"),
    pytest.param(Ending.blocked(Guard.COOLDOWN, Reason.COOLDOWN, "cooling", retry_after=60), None, None,
                 id="cooldown-ends"),
    pytest.param(Ending.blocked(Guard.TARGET_LOCK, Reason.LOCK_LOST, "lost"), None, None,
                 id="lock-lost-ends"),
    pytest.param(Ending.blocked(Guard.KILL_SWITCH, Reason.PAUSED, "paused"), before(1, 1), None,
                 id="pause-ends-even-a-deferred-one"),
    pytest.param(Ending.failed(Reason.PERMANENT_FAILURE, "boom"), None, None, id="failure-ends"),
])
def test_plan(ending: Ending, deferral: Deferral | None, expected: Wait | GiveUp | None) -> None:
    assert plan(ending, deferral, now=NOW, bound=BOUND) == expected


def test_max_delay_caps_the_doubling() -> None:
    bound = Bound(max_wait=86_400, max_attempts=10_000, retry=1.0, max_delay=30.0)
    waits = [plan(LOCKED, before(n, 0), now=NOW, bound=bound) for n in (0, 1, 4, 5, 9_000)]
    assert [w.not_before - NOW for w in waits if isinstance(w, Wait)] == [1, 2, 16, 30, 30]


def test_a_deferral_travels_in_the_work_item_and_back() -> None:
    item = WorkItem(id="d1", dedup_key="k", payload={"kind": "decision", "rule": "r"}, ref="7")
    assert Deferral.of(item) is None
    d = Deferral(3, NOW, "target_lock", "target_locked")
    carried = d.onto(item)
    assert (carried.id, carried.dedup_key, carried.payload["rule"], carried.ref) == ("d1", "k", "r", "")
    assert Deferral.of(carried) == d
    assert Deferral.of(Deferral(4, NOW, "x", "y").onto(carried)) == Deferral(4, NOW, "x", "y")
