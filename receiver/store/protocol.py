"""Shared state behind one interface: what must outlive a process or be seen by every replica.

Opened and closed by ``receiver.runtime``. Intake claims dedup keys and enqueues work;
the work feeder takes it; guards read and update pauses, cooldown/rate/blast budgets,
circuit breakers, target locks and approvals. Two stores implement it and pass one
contract suite (``tests/receiver/store/test_contract.py``): ``receiver.store.sqlite.store``
(the default, one replica, durable across restarts) and ``receiver.store.redis.store``
(several replicas). Every time comes from the injected clock, so TTLs behave the same in
both and tests move time by hand; Redis TTLs only bound how long garbage lives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from receiver.store.values import (
    Admission,
    Approval,
    ApprovalStatus,
    Budget,
    Circuit,
    Closed,
    Pause,
    Resolved,
    StepMark,
    Timer,
    Transition,
    WorkItem,
)


class StateStore(Protocol):
    """What the receiver keeps outside its process memory. Every method may raise StateError."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`StateError` when the store cannot be used."""
        ...

    # -- dedup: one key per firing
    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        """Claim each key for ``ttl`` seconds; True where this call claimed it first."""
        ...

    async def claimed(self, key: str) -> bool:
        """Whether ``key`` is claimed now (neither released nor lapsed); claims nothing."""
        ...

    async def release(self, keys: Sequence[str]) -> None:
        """Give claims back (intake could not complete what it claimed them for)."""
        ...

    # -- the execute-once marker of each step: what is known of its execution
    async def step_mark(self, key: str) -> StepMark | None:
        """Step ``key``'s marker; None when there is none (never set, given back, or lapsed)."""
        ...

    async def mark_step(self, key: str, mark: StepMark | None, *, ttl: float, if_absent: bool = False,
                        if_claimed: bool = False,
                        if_holder: str | None = None) -> tuple[bool, StepMark | None]:
        """Replace step ``key``'s marker by ``mark`` (None: remove it; kept ``ttl`` seconds), at once,
        when the marker there now is missing (``if_absent``), is ``claimed`` by any run
        (``if_claimed``: it has sent nothing), or is held by ``if_holder``.

        Returns whether it was replaced, and the marker that was there before the call.
        """
        ...

    # -- the work queue
    async def claim_and_enqueue(self, items: Sequence[WorkItem], *, ttl: float,
                                max_backlog: int) -> list[bool]:
        """Claim each item's dedup key for ``ttl`` seconds and queue the items that claimed theirs, at once.

        True where the item was queued (its key was free, or it has none); False where the key
        was claimed already, here or earlier in ``items`` (a duplicate: neither claimed nor
        queued). One transaction (one script): a claim never exists without its queued item,
        whatever fails or dies. Raise :class:`BacklogFull` (claiming and adding nothing) when
        the items to queue would make the queue exceed ``max_backlog``. The items of several
        requests may come in one call.
        """
        ...

    async def enqueue(self, items: Sequence[WorkItem], *, ttl: float, max_backlog: int) -> None:
        """Persist ``items`` and extend their dedup claims to ``ttl``, all or nothing.

        Raise :class:`BacklogFull` (adding nothing) when the queue would exceed ``max_backlog``.
        """
        ...

    async def take(self, consumer: str, count: int, *, block: float) -> list[WorkItem]:
        """Up to ``count`` items nobody has taken, waiting up to ``block`` seconds for one."""
        ...

    async def reclaim(self, consumer: str, *, idle: float, count: int) -> list[WorkItem]:
        """Take over items another consumer took and has not touched for ``idle`` seconds, and at
        once every item of a consumer whose heartbeat expired (one with none: ``idle`` applies)."""
        ...

    async def reclaim_own(self, consumer: str, *, held: Sequence[str], idle: float,
                          count: int) -> list[WorkItem]:
        """Take up again ``consumer``'s own items that are not in ``held`` (nothing in the process
        holds them: a completion lost, a worker gone) and untouched for ``idle`` seconds."""
        ...

    async def heartbeat(self, consumer: str, *, ttl: float) -> None:
        """Say that ``consumer`` is alive for ``ttl`` more seconds (its liveness; see ``reclaim``)."""
        ...

    async def touch(self, consumer: str, refs: Sequence[str]) -> None:
        """Say that ``consumer`` is still working on ``refs`` (resets their idle time)."""
        ...

    async def complete(self, refs: Sequence[str]) -> None:
        """Remove finished items."""
        ...

    async def backlog(self) -> int:
        """Items queued or being worked on."""
        ...

    async def oldest_work(self) -> float | None:
        """When the oldest item queued or being worked on was enqueued (the clock's seconds);
        None when there is none (or it was enqueued by a version that did not keep the time)."""
        ...

    # -- deferred work: waits out an open circuit or a held lock, then is queued again
    async def defer(self, ref: str, item: WorkItem, *, not_before: float, wake: str | None = None,
                    rank: float = 0.0) -> bool:
        """Take the queued entry ``ref`` off the queue and keep ``item`` (the same work, its
        deferral noted in its payload) until ``not_before``, at once.

        False, keeping nothing, when ``ref`` is no longer queued (completed meanwhile). Kept by
        ``item.id``: deferring an id that is already deferred replaces it (never twice).
        ``wake``: what it waits for (a lock's subject, a circuit), by which :meth:`wake_deferred`
        brings it forward, lowest ``rank`` first.
        """
        ...

    async def wake_deferred(self, wake: str, *, count: int) -> int:
        """Make the ``count`` lowest-ranked items deferred under ``wake`` due now (each once: it
        no longer waits under ``wake``); how many."""
        ...

    async def release_deferred(self, *, limit: int) -> tuple[int, int]:
        """Queue up to ``limit`` deferred items whose time has come (each removed as it is
        queued, at once; one replica gets each); (how many, how many still wait)."""
        ...

    async def deferred_count(self) -> int:
        """How many items are deferred now (every replica's)."""
        ...

    async def deferred(self) -> list[tuple[WorkItem, float]]:
        """Every deferred item with its ``not_before``, soonest first (for tests and the console)."""
        ...

    # -- kill switch and blast-radius pause
    async def get_pause(self) -> Pause | None: ...

    async def set_pause(self, pause: Pause) -> bool:
        """Pause unless already paused; True when this call paused."""
        ...

    async def clear_pause(self) -> Pause | None:
        """Resume; returns the pause that was lifted, if any."""
        ...

    # -- cooldown, rate limit and blast radius, checked and spent atomically
    async def admit(self, budget: Budget, *, spend: bool) -> Admission:
        """Check every budget; when all allow it and ``spend``, spend them all at once.

        Idempotent per ``budget.member``: budgets that member already spent neither block
        it nor are spent twice (a decision taken up again after a crash pays once).
        """
        ...

    # -- circuit breakers per target
    async def circuit(self, target: str) -> Circuit: ...

    async def record_result(self, target: str, *, ok: bool, threshold: int, cooloff: float) -> Circuit:
        """Count a success (closes) or a failure (opens at ``threshold`` for ``cooloff`` seconds)."""
        ...

    async def reset_circuit(self, target: str) -> Circuit:
        """Close a circuit by hand; returns the state it had."""
        ...

    # -- target locks with fencing tokens
    async def acquire_lock(self, key: str, owner: str, *, ttl: float,
                           breaking: str | None = None) -> int | None:
        """A fencing token (larger than any before for ``key``), or None when held by another
        (``breaking``: an owner whose hold is taken over, a run that can no longer act)."""
        ...

    async def lock_valid(self, key: str, token: int) -> bool:
        """Whether ``token`` still holds the lock (not expired, not taken over)."""
        ...

    async def release_lock(self, key: str, token: int) -> None: ...

    # -- approvals
    async def put_approval(self, approval: Approval) -> None: ...

    async def get_approval(self, approval_id: str) -> Approval | None: ...

    async def list_approvals(self, statuses: Sequence[ApprovalStatus] | None = None) -> list[Approval]:
        """Newest first."""
        ...

    async def decide_approval(self, approval_id: str, to: ApprovalStatus, *, actor: str,
                              comment: str | None) -> Transition:
        """Move a pending approval to ``to`` exactly once across replicas.

        A pending approval past its expiry becomes ``expired`` instead (and ``changed`` is
        False unless ``to`` was ``expired``). A non-pending one is returned unchanged.
        """
        ...

    async def pending_approvals_for(self, fingerprint: str) -> list[Approval]: ...

    # -- timers (verify watches, escalation timers) and occurrence counts
    async def put_timer(self, timer: Timer) -> bool:
        """Arm ``timer`` unless its id is armed, held, finished or taken; True when this call armed it."""
        ...

    async def put_timers(self, timers: Sequence[Timer]) -> list[bool]:
        """``put_timer`` of each, in order, as one transaction (one script): each one's answer as
        if they were armed one after the other (an id given twice: armed by the first)."""
        ...

    async def claim_due_timers(self, *, lease: float, limit: int) -> list[Timer]:
        """Up to ``limit`` timers due now that nobody holds, held by this call for ``lease`` seconds.

        One replica gets each; one that is not finished within the lease is due again.
        """
        ...

    async def finish_timer(self, timer_id: str) -> None:
        """A claimed timer was handled: it never fires again."""
        ...

    async def take_timers(self, fingerprint: str, kinds: Sequence[str]) -> list[Timer]:
        """Disarm and return the armed timers of ``fingerprint`` of these kinds that nobody holds."""
        ...

    # -- a webhook's resolved alerts, closed at once
    async def close_resolved(self, firings: Sequence[Resolved], *, ttl: float, kinds: Sequence[str],
                             actor: str, comment: str) -> list[Closed]:
        """Close resolved firings, one :class:`Closed` each, in order: claim each one's marker for
        ``ttl`` seconds (as :meth:`claim`), then, per firing, move its alert's pending approvals to
        cancelled (as :meth:`decide_approval` by ``actor`` with ``comment``: one past its expiry
        is expired instead) and take its timers of ``kinds`` (as :meth:`take_timers`).

        Every marker is claimed before any timer is taken: a watch armed after the take then
        finds the marker. One transaction on SQLite; on Redis one MULTI of one script per part
        (a Cluster: the markers first, then approvals and timers), and when some of it ran
        before a failure, :class:`PartlyClosed` carries what did. Closing again changes nothing.
        """
        ...

    async def count_occurrence(self, key: str, member: str, *, window: float) -> int:
        """Count ``member`` under ``key`` (once however often), forget those older than
        ``window`` seconds; how many are counted now."""
        ...
