"""Target locks: no two actions on one subject at once, across replicas, with fencing.

:class:`TargetLock` is a stage of ``receiver.flow.guards.pipeline``: it takes the lock just
before a step's budgets are spent and holds it while the step executes. The lock has a
TTL (so a crashed holder cannot block a target for ever) and a fencing token; before each
attempt the holder checks its token still holds, so a holder whose lock expired and was
taken over never acts after the new holder started. A run that took over a step's
execute-once marker from a run that sent nothing (``receiver.flow.guards.once``) takes over
that run's lock too, rather than waiting out its TTL. A decision the held lock stopped waits
(``receiver.flow.deferral``); letting the lock go brings the longest-waiting one forward.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from receiver.decisions import Reason
from receiver.errors import StateError
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import Hold, StepRun
from receiver.flow.steps import PreparedStep, StepFailed
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from remediations.base import Result

_log = structlog.get_logger("remediator.lock")


class Fence(Hold):
    """A held lock; ``check()`` before every side effect, released when the step is done."""

    def __init__(self, store: StateStore, key: str, token: int) -> None:
        self._store = store
        self.key = key
        self.token = token

    async def release(self) -> None:
        """Let the lock go, and bring forward the decision that waits longest for it."""
        try:
            await self._store.release_lock(self.key, self.token)
            await self._store.wake_deferred(waits_for(self.key), count=1)
        except StateError as exc:  # it expires by its TTL; what waits comes back by its own time
            _log.warning("lock.release_failed", key=self.key, error=str(exc))

    async def check(self) -> None:
        if not await self._store.lock_valid(self.key, self.token):
            raise Blocked(Guard.TARGET_LOCK, Reason.LOCK_LOST,
                          f"the lock on {self.key} expired or was taken over (token {self.token}); "
                          "not acting on a stale lock")

    async def give_back(self) -> None:
        await self.release()

    async def before_attempt(self, attempt: int) -> None:
        await self.check()

    async def finish(self, outcome: Result | StepFailed | None) -> None:
        await self.release()


def waits_for(key: str) -> str:
    """What a decision deferred by the lock on ``key`` waits for (``StateStore.wake_deferred``)."""
    return f"lock:{key}"


async def acquire_target(store: StateStore, key: str, *, owner: str, ttl: float,
                         breaking: str | None = None) -> Fence:
    """Hold the lock on ``key`` or raise :class:`Blocked` (``target_locked``: the decision waits
    until the holder lets it go, ``receiver.flow.deferral``) at once (a hold of ``breaking``, a
    run that can no longer act, is taken over)."""
    try:
        token = await store.acquire_lock(key, owner, ttl=ttl, breaking=breaking)
    except StateError:
        await _let_go_of_own(store, key, owner)
        raise
    if token is None:
        raise Blocked(Guard.TARGET_LOCK, Reason.TARGET_LOCKED,
                      f"another action is running on {key}; not running two at once",
                      waits_for=waits_for(key))
    return Fence(store, key, token)


async def _let_go_of_own(store: StateStore, key: str, owner: str) -> None:
    """After an acquire that failed in the store, let go of a hold ``owner`` may have got anyway.

    The store may have taken the lock and failed only in answering: its reply lost (a timeout,
    a dropped connection), or, with ``replicas=N``, the master holding it while no replica
    confirmed. ``owner`` names this run alone, and the run stops here, so nothing would ever
    release that hold: every decision on ``key``, this one's next delivery included, would wait
    out the lock's TTL. Best effort, with what every store has: take over the run's own hold
    (``breaking``) and release it; free, it is taken and released; held by another, untouched.
    """
    try:
        token = await store.acquire_lock(key, owner, ttl=1.0, breaking=owner)
        if token is not None:
            await store.release_lock(key, token)
    except StateError as exc:  # it expires by its TTL
        _log.warning("lock.let_go_failed", key=key, owner=owner, error=str(exc))


class TargetLock:
    """The stage: the lock on the step's subject, held by the run (this process, ``owner``, and the
    run, as its execute-once marker names it). The lock of a run whose marker this run took over
    (``taken_from``, by run: it died, or waits to retry and can no longer send) is taken over too."""

    def __init__(self, settings: Settings, *, store: StateStore, owner: str,
                 taken_from: Mapping[str, str]) -> None:
        self._settings = settings
        self._store = store
        self._owner = owner
        self._taken_from = taken_from

    async def enter(self, run: StepRun) -> Hold:
        return await acquire_target(self._store, run.step.subject, owner=run.holder(self._owner),
                                    ttl=self._ttl(run.step), breaking=self._taken_from.get(run.run))

    def _ttl(self, step: PreparedStep) -> float:
        """``guards.lock_ttl``, or longer when every attempt and backoff could take longer:
        a lock must not expire under a holder that is still within its limits."""
        guards = self._settings.guards
        backoff = guards.retry_backoff.total_seconds() * (2 ** guards.retries - 1)
        worst = step.timeout * (guards.retries + 1) + backoff + 60.0
        return float(max(guards.lock_ttl.total_seconds(), worst))
