"""Shared state behind one interface: what must outlive a process or be seen by every replica.

Opened and closed by ``receiver.runtime``. Intake claims dedup keys and enqueues work;
the work feeder takes it; guards read and update pauses, cooldown/rate/blast budgets,
circuit breakers, target locks and approvals. Two stores implement it and pass one
contract suite (``tests/receiver/test_state_contract.py``): ``receiver.state_sqlite``
(the default, one replica, durable across restarts) and ``receiver.state_redis``
(several replicas). Every time comes from the injected clock, so TTLs behave the same in
both and tests move time by hand; Redis TTLs only bound how long garbage lives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from receiver.clock import Clock
from receiver.errors import StateError


@dataclass(frozen=True, slots=True)
class Pause:
    """Automation is paused: by an admin (kill switch) or by the blast radius tripping."""

    source: str  # "admin" or "blast_radius"
    actor: str
    detail: str
    since: float


@dataclass(frozen=True, slots=True)
class Budget:
    """What one execution spends: a cooldown slot, a rate-limit slot, a blast-radius slot.

    A ``None`` key (or max) means that budget does not apply.
    """

    member: str  # unique per execution (decision id and step)
    cooldown_key: str | None = None
    cooldown: float = 0.0
    rate_key: str | None = None
    rate_max: int = 0
    rate_window: float = 0.0
    blast_max: int | None = None
    blast_window: float = 0.0


class Verdict(StrEnum):
    OK = "ok"
    COOLDOWN = "cooldown"
    RATE_LIMIT = "rate_limit"
    BLAST_RADIUS = "blast_radius"


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to :meth:`StateStore.admit`: OK, or the first budget that is spent."""

    verdict: Verdict
    retry_after: float | None = None  # seconds until the spent budget frees up, when known


@dataclass(frozen=True, slots=True)
class Circuit:
    """A circuit breaker's state for one target."""

    failures: int = 0
    open_until: float | None = None

    def is_open(self, now: float) -> bool:
        return self.open_until is not None and now < self.open_until


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Approval:
    """A request for a human to approve a decision's plan, and what became of it."""

    id: str
    status: ApprovalStatus
    created_at: float
    expires_at: float
    decision: str
    rule: str
    fingerprint: str
    payload: Mapping[str, Any]  # what to run once approved (plans, params, alert), as JSON data
    decided_by: str | None = None
    decided_at: float | None = None
    comment: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status.value, "created_at": self.created_at,
            "expires_at": self.expires_at, "decision": self.decision, "rule": self.rule,
            "fingerprint": self.fingerprint, "payload": dict(self.payload),
            "decided_by": self.decided_by, "decided_at": self.decided_at, "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Approval:
        return cls(
            id=data["id"], status=ApprovalStatus(data["status"]), created_at=data["created_at"],
            expires_at=data["expires_at"], decision=data["decision"], rule=data["rule"],
            fingerprint=data["fingerprint"], payload=data["payload"], decided_by=data["decided_by"],
            decided_at=data["decided_at"], comment=data["comment"],
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of :meth:`StateStore.decide_approval`: the record now, and whether this call moved it."""

    approval: Approval | None
    changed: bool


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One unit of accepted work: a decision to run, or an approved plan to execute.

    ``ref`` is the store's handle (a row number, a stream entry id), set by ``take``.
    """

    id: str
    payload: Mapping[str, Any]
    dedup_key: str | None = None
    ref: str = ""
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class Timer:
    """Something to do at ``due_at`` unless the alert resolves first: a verify watch, an
    escalation timer (``receiver.timers``).

    When due it is claimed by one replica for a lease (due again if that replica dies
    before finishing it); finished or taken, it stays as a tombstone until ``expires_at``,
    so the same id is never armed twice. ``claims`` counts the claims, this one included.
    """

    id: str
    kind: str
    fingerprint: str
    due_at: float
    expires_at: float
    payload: Mapping[str, Any]
    claims: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "fingerprint": self.fingerprint, "due_at": self.due_at,
                "expires_at": self.expires_at, "payload": dict(self.payload)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, claims: int = 0) -> Timer:
        return cls(id=data["id"], kind=data["kind"], fingerprint=data["fingerprint"], due_at=data["due_at"],
                   expires_at=data["expires_at"], payload=data["payload"], claims=claims)


class BacklogFull(StateError):
    """The shared work queue holds ``limit`` items already."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"work queue full ({limit}); send again later")
        self.limit = limit


class StateStore(Protocol):
    """What the receiver keeps outside its process memory. Every method may raise StateError."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`StateError` when the store cannot be used."""
        ...

    # -- dedup: one key per firing; also the execute-once marker of each step
    async def claim(self, keys: Sequence[str], *, ttl: float) -> list[bool]:
        """Claim each key for ``ttl`` seconds; True where this call claimed it first."""
        ...

    async def claimed(self, key: str) -> bool:
        """Whether ``key`` is claimed now (neither released nor lapsed); claims nothing."""
        ...

    async def release(self, keys: Sequence[str]) -> None:
        """Give claims back (intake could not complete what it claimed them for)."""
        ...

    # -- the work queue
    async def enqueue(self, items: Sequence[WorkItem], *, ttl: float, max_backlog: int) -> None:
        """Persist ``items`` and extend their dedup claims to ``ttl``, all or nothing.

        Raise :class:`BacklogFull` (adding nothing) when the queue would exceed ``max_backlog``.
        """
        ...

    async def take(self, consumer: str, count: int, *, block: float) -> list[WorkItem]:
        """Up to ``count`` items nobody has taken, waiting up to ``block`` seconds for one."""
        ...

    async def reclaim(self, consumer: str, *, idle: float, count: int) -> list[WorkItem]:
        """Take over items another consumer took and has not touched for ``idle`` seconds."""
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
    async def acquire_lock(self, key: str, owner: str, *, ttl: float) -> int | None:
        """A fencing token (larger than any before for ``key``), or None when held by another."""
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

    async def count_occurrence(self, key: str, member: str, *, window: float) -> int:
        """Count ``member`` under ``key`` (once however often), forget those older than
        ``window`` seconds; how many are counted now."""
        ...


def open_state_store(url: str, *, clock: Clock, prefix: str = "remediator") -> StateStore:
    """The store a ``state:`` URL names."""
    if url.startswith("sqlite:///"):
        from pathlib import Path  # noqa: PLC0415

        from receiver.state_sqlite import SqliteStateStore  # noqa: PLC0415

        return SqliteStateStore(Path(url.removeprefix("sqlite:///")), clock=clock)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from receiver.state_redis import RedisStateStore  # noqa: PLC0415

        return RedisStateStore(url, clock=clock, prefix=prefix)
    raise StateError(f"unsupported state URL {url!r}")
