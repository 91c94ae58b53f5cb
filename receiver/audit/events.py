"""What an audit record is about (``AuditEvent``), and the audit log's error.

Every writer of records (intake, the workers, guards, escalations, the admin API) names its
event from :class:`AuditEvent`; readers (``receiver.tools.auditview``) filter by it. The log's
own records (``audit.sealed``, ``audit.rotated``, ``admin.audit_recovered`` with a
:class:`Damage`) are written by ``receiver.audit.log`` and judged by ``receiver.audit.verify``.
"""

from __future__ import annotations

from enum import StrEnum

from receiver.errors import ReceiverError


class AuditEvent(StrEnum):
    """What an audit record is about."""

    ALERT_RECEIVED = "alert.received"
    RULE_MATCHED = "rule.matched"
    GUARD_BLOCKED = "guard.blocked"
    GUARD_DEFERRED = "guard.deferred"
    DECISION_FAILED = "decision.failed"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_APPROVED = "approval.approved"
    APPROVAL_REJECTED = "approval.rejected"
    APPROVAL_EXPIRED = "approval.expired"
    APPROVAL_CANCELLED = "approval.cancelled"
    ACTION_PLANNED = "action.planned"
    ACTION_STARTED = "action.started"
    ACTION_SUCCEEDED = "action.succeeded"
    ACTION_FAILED = "action.failed"
    ACTION_SKIPPED = "action.skipped"
    ACTION_READ_BACK = "action.read_back"
    ACTION_OUTCOME_UNKNOWN = "action.outcome_unknown"
    DECISION_RESUMED = "decision.resumed"
    ALERT_RESOLVED = "alert.resolved"
    CIRCUIT_OPENED = "circuit.opened"
    NOTIFY_FAILED = "notify.failed"
    VERIFY_SUCCEEDED = "verify.succeeded"
    VERIFY_FAILED = "verify.failed"
    VERIFY_RESOLVED_LATE = "verify.resolved_late"
    VERIFY_SKIPPED = "verify.skipped"
    VERIFY_WATCHING = "verify.watching"
    RUNG_STARTED = "rung.started"
    ESCALATION_SENT = "escalation.sent"
    INTAKE_FAILED = "intake.failed"
    ADMIN_STARTED = "admin.started"
    ADMIN_STOPPED = "admin.stopped"
    ADMIN_RELOAD = "admin.reload"
    ADMIN_PAUSE = "admin.pause"
    ADMIN_RESUME = "admin.resume"
    ADMIN_CIRCUIT_RESET = "admin.circuit_reset"
    ADMIN_AUDIT_RECOVERED = "admin.audit_recovered"
    AUDIT_SEALED = "audit.sealed"
    AUDIT_ROTATED = "audit.rotated"


class Damage(StrEnum):
    """What the writer found when it opened a log (``admin.audit_recovered``'s ``reason``).

    ``audit verify`` reports every one but a torn last line (a crash mid-write, its bytes cut
    and hashed in the record) as a failure: see docs/audit.md.
    """

    TORN = "torn last line"
    UNSEALED = "unsealed tail"
    CUT = "cut"
    REWRITTEN = "rewritten"
    NO_ANCHOR = "no anchor"
    ANCHOR_FORGED = "anchor not authentic"


class AuditError(ReceiverError):
    """The audit log cannot be opened, continued or written."""
