"""The values the state store keeps and returns: pauses, budgets, circuits, approvals, work, timers,
the execute-once markers of steps.

Plain frozen data shared by ``receiver.store.protocol`` (what a store must do), both stores
and the guards and flow that read them; with the one JSON form of each value both stores
write (``as_dict``/``from_dict``, ``decode_timers``) and what both keep decided approvals for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from receiver.errors import StateError


@dataclass(frozen=True, slots=True)
class Pause:
    """Automation is paused: by an admin (kill switch) or by the blast radius tripping."""

    source: str  # "admin" or "blast_radius"
    actor: str
    detail: str
    since: float

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "actor": self.actor, "detail": self.detail, "since": self.since}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pause:
        return cls(**data)


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


KEEP_DECIDED = 7 * 86_400.0
"""Seconds a decided approval stays listable in either store before it is collected."""


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
    escalation timer (``receiver.flow.timers``).

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


def decode_timers(rows: Iterable[tuple[str, int | str]]) -> list[Timer]:
    """Timers from the (JSON body, claims) pairs a store kept, earliest due first (then by id)."""
    found = [Timer.from_dict(json.loads(body), claims=int(claims)) for body, claims in rows]
    return sorted(found, key=lambda t: (t.due_at, t.id))


class StepState(StrEnum):
    """What is known of a step's execution, kept in its execute-once marker (``StepMark``)."""

    CLAIMED = "claimed"  # a run holds the step and has sent nothing yet
    SENDING = "sending"  # a request is about to go or went out; its outcome is not recorded
    DONE = "done"        # its outcome is recorded in the audit log (``StepMark.outcome``)


@dataclass(frozen=True, slots=True)
class StepMark:
    """A step's execute-once marker: its state, the run that holds it (``holder``, unique per
    run), since when (the clock's seconds), how it ended once ``done`` (``succeeded``,
    ``failed`` or ``unknown``) and what was found on the way (``evidence``)."""

    state: StepState
    holder: str
    since: float
    outcome: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "holder": self.holder, "since": self.since,
                "outcome": self.outcome, "evidence": dict(self.evidence)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepMark:
        return cls(state=StepState(data["state"]), holder=data["holder"], since=data["since"],
                   outcome=data.get("outcome", ""), evidence=data.get("evidence", {}))


class BacklogFull(StateError):
    """The shared work queue holds ``limit`` items already."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"work queue full ({limit}); send again later")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Resolved:
    """One resolved firing for :meth:`receiver.store.protocol.StateStore.close_resolved`: the
    dedup key that marks it resolved, and its alert's fingerprint (whose approvals and timers close)."""

    marker: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Closed:
    """What :meth:`receiver.store.protocol.StateStore.close_resolved` did for one resolved firing:
    the approvals it moved out of pending (cancelled, or expired: past their expiry), oldest
    first, and the timers it took (earliest due first)."""

    approvals: tuple[Approval, ...] = ()
    timers: tuple[Timer, ...] = ()


class PartlyClosed(StateError):
    """:meth:`receiver.store.protocol.StateStore.close_resolved` failed after some of it was done
    (a Redis whose parts answered differently): ``closed`` is what was, one per firing in order,
    to be recorded all the same."""

    def __init__(self, message: str, closed: list[Closed]) -> None:
        super().__init__(message)
        self.closed = closed
