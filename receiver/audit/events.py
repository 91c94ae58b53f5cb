"""What an audit record is about (``AuditEvent``), and the audit log's error.

Every writer of records (intake, the workers, guards, escalations, the admin API) names its
event from :class:`AuditEvent`; readers (``receiver.tools.auditview``) filter by it.
"""

from __future__ import annotations

from enum import StrEnum

from receiver.errors import ReceiverError


class AuditEvent(StrEnum):
    """What an audit record is about."""

    ALERT_RECEIVED = "alert.received"
    RULE_MATCHED = "rule.matched"
    GUARD_BLOCKED = "guard.blocked"
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


class AuditError(ReceiverError):
    """The audit log cannot be opened, continued or written."""
