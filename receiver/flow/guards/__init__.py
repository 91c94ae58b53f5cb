"""The guards between a decision and an action, in DESIGN's order.

dedup (``receiver.flow.intake`` and the execute-once marker) → maintenance window and kill
switch (``maintenance``, ``killswitch``) → cooldown, rate limit and blast radius
(``budget``) → circuit breaker (``circuit``) → approval (``approvals``) → dry-run →
target lock (``lock``) → execute. ``receiver.flow.workers`` runs them through
``receiver.flow.guards.pipeline``; each stop is a :class:`Blocked` naming its :class:`Guard`
and :class:`receiver.decisions.Reason`, audited, logged and counted under the same words.
"""

from __future__ import annotations

from enum import StrEnum

from receiver.decisions import Reason


class Guard(StrEnum):
    """The ``guard`` of a ``guard.blocked`` record and of ``remediator_guard_blocks_total``."""

    FOR = "for"
    DEDUP = "dedup"
    MAINTENANCE = "maintenance"
    KILL_SWITCH = "kill_switch"
    COOLDOWN = "cooldown"
    RATE_LIMIT = "rate_limit"
    BLAST_RADIUS = "blast_radius"
    CIRCUIT_BREAKER = "circuit_breaker"
    APPROVAL = "approval"
    DRY_RUN = "dry_run"
    TARGET_LOCK = "target_lock"
    EXECUTE_ONCE = "execute_once"


class Blocked(Exception):
    """A guard stopped a decision (internal to the receiver)."""

    def __init__(self, guard: Guard, reason: Reason, detail: str, *,
                 retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.guard = guard
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
