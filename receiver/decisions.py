"""Decisions and the reasons they end the way they do.

A :class:`Decision` is one (alert, rule) pair that intake accepted; workers carry it
through plan and execute. :class:`Reason` is the single vocabulary of why: the same
value is the audit record's ``reason``, the log line's ``reason`` and the metric label;
:class:`Guard` names the guard that stopped a decision, in the same three places.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from rules.alert import Alert
from rules.model import Rule
from rules.priority import Priority


class Reason(StrEnum):
    """Why a decision (or a request) ended where it did."""

    QUEUED = "queued"
    FOR_NOT_ELAPSED = "for_not_elapsed"
    DUPLICATE = "duplicate"
    TEMPLATE_ERROR = "template_error"
    INVALID_PARAMS = "invalid_params"
    TARGET_UNKNOWN = "target_unknown"
    TARGET_NOT_ALLOWED = "target_not_allowed"
    PLAN_FAILED = "plan_failed"
    APPROVAL_REQUIRED = "approval_required"
    MAINTENANCE = "maintenance"
    PAUSED = "paused"
    COOLDOWN = "cooldown"
    RATE_LIMITED = "rate_limited"
    BLAST_RADIUS = "blast_radius"
    CIRCUIT_OPEN = "circuit_open"
    TARGET_LOCKED = "target_locked"
    CIRCUIT_TRIAL = "circuit_trial"
    """Half-open: another decision's attempt is the one trial; this one waits for its outcome."""
    ALERT_RESOLVED = "alert_resolved"
    """Deferred work whose alert resolved while it waited: it does not run."""
    DEFER_EXHAUSTED = "defer_exhausted"
    """Deferred work that waited its bound (``guards.defer``): a human is asked instead."""
    LOCK_LOST = "lock_lost"
    ALREADY_DONE = "already_done"
    STEP_RUNNING = "step_running"
    TAKEN_OVER = "taken_over"
    OUTCOME_UNKNOWN = "outcome_unknown"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    RULE_GONE = "rule_gone"
    STATE_UNAVAILABLE = "state_unavailable"
    DRY_RUN = "dry_run"
    SUCCEEDED = "succeeded"
    TEMPORARY_FAILURE = "temporary_failure"
    PERMANENT_FAILURE = "permanent_failure"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    SHUTDOWN = "shutdown"


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


class Escalation(StrEnum):
    """Why people were told that automation did not, or must not, carry on: the ``reason``
    of ``escalation.sent``, of the ``escalation.*`` log lines and of ``remediator_escalations``."""

    VERIFY_FAILED = "verify_failed"
    LADDER_STOPPED = "ladder_stopped"
    P1_UNRESOLVED = "p1_unresolved"
    P2_RECURRING = "p2_recurring"
    CIRCUIT_OPEN = "circuit_open"
    BLAST_RADIUS = "blast_radius"
    OUTCOME_UNKNOWN = "outcome_unknown"
    DEFER_EXHAUSTED = "defer_exhausted"
    """Accepted work waited its bound behind an open circuit or a held lock and did not run."""


class Outcome(StrEnum):
    """How a decision ended, coarsely: the ``outcome`` label of the decisions metric."""

    QUEUED = "queued"
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    AWAITING_APPROVAL = "awaiting_approval"
    PLANNED = "planned"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CompletionFailure(StrEnum):
    """Why removing finished work from the store failed (it is tried again): the ``reason`` of the
    ``state.complete_failed`` log line and of ``remediator_completion_failures_total``."""

    STATE_UNAVAILABLE = "state_unavailable"
    TIMEOUT = "timeout"
    CRASHED = "crashed"


class Rejection(StrEnum):
    """Why a webhook request was refused before any alert was looked at."""

    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID_JSON = "invalid_json"
    INVALID_PAYLOAD = "invalid_payload"
    UNAVAILABLE = "unavailable"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INVALID_ENCODING = "invalid_encoding"
    REQUEST_TIMEOUT = "request_timeout"
    FOREIGN_ORIGIN = "foreign_origin"
    AMBIGUOUS_CREDENTIALS = "ambiguous_credentials"


@dataclass(frozen=True, slots=True)
class Decision:
    """One accepted (alert, rule) pair on its way to the workers."""

    id: str
    dedup_key: str
    rule: Rule
    alert: Alert
    priority: Priority
    response_target: timedelta
    dry_run: bool
    rung: int = 0
    """Which rung of the rule's ladder this decision runs (0 for a plain rule)."""


def decision_identity(rule: str, alert: Alert, *, dry_run: bool) -> tuple[str, str]:
    """The dedup key and the decision id for ``rule`` answering ``alert``.

    One firing of one alert is (fingerprint, startsAt); its resolution is a separate
    event; a dry run and a live run of the same firing are separate decisions, so turning
    dry-run off acts on the next re-send of an alert that was only planned before.
    """
    mode = "dry" if dry_run else "live"
    key = f"{rule}\x1f{alert.fingerprint}\x1f{alert.starts_at_raw}\x1f{alert.status}\x1f{mode}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return key, digest
