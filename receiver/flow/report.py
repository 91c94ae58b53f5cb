"""One report of an ending: the metric, the audit record and the log line of an outcome, from one call.

Every way a decision ends is an :class:`Ending` (the table of them is its constructors:
blocked by a guard, failed, waiting for an approval, run or planned, ...), and
:meth:`Report.ended` counts it, records it and logs it under the same words
(``receiver.decisions``); an action's attempt ends through :meth:`Report.attempt_succeeded`
or :meth:`Report.attempt_failed`; a decision a transient guard sent back to wait through
:meth:`Report.deferred` (``receiver.flow.deferral``). A stage that stops a decision raises
:class:`Stopped` carrying its ending. Built by ``receiver.runtime``; called by ``receiver.flow.intake``
(``for`` and dedup), ``receiver.flow.workers`` (every end of a work item) and
``receiver.flow.steps`` (every attempt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from receiver.audit import AuditEvent, AuditLog
from receiver.decisions import Decision, Guard, Outcome, Reason
from receiver.metrics import Metrics
from remediations.base import Result

_log = structlog.get_logger("remediator.report")
_NAMES = ("outcome", "rule", "fingerprint", "dry_run", "rung")
_GUARD_BLOCKS = (Outcome.BLOCKED, Outcome.AWAITING_APPROVAL)  # a guard's stop, counted by guard


@dataclass(frozen=True, slots=True)
class Ending:
    """How one decision ended, and so what is counted, recorded and logged.

    ``event`` None: counted only (a decision that ran to its end has its records already).
    ``names``: which of the decision's names its record carries (``rung`` only when climbed).
    """

    outcome: Outcome
    reason: Reason
    detail: str = ""
    event: AuditEvent | None = None
    guard: Guard | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    log: str | None = None
    counted: bool = True
    names: tuple[str, ...] = _NAMES

    @classmethod
    def done(cls, outcome: Outcome, reason: Reason) -> Ending:
        """Ran (or, in dry-run, planned) to its end."""
        return cls(outcome, reason)

    @classmethod
    def blocked(cls, guard: Guard, reason: Reason, detail: str, *,
                retry_after: float | None = None) -> Ending:
        """A guard stopped it."""
        extra = {} if retry_after is None else {"retry_after": round(retry_after, 3)}
        return cls(Outcome.BLOCKED, reason, detail, AuditEvent.GUARD_BLOCKED, guard, extra,
                   log="decision.blocked")

    def with_extra(self, **extra: Any) -> Ending:
        """This ending with more fields on its record."""
        return Ending(self.outcome, self.reason, self.detail, self.event, self.guard,
                      {**self.extra, **extra}, self.log, self.counted, self.names)

    @classmethod
    def held(cls, approval: str) -> Ending:
        """It waits for a human's approval (its record names no rung)."""
        return cls(Outcome.AWAITING_APPROVAL, Reason.APPROVAL_REQUIRED, f"waiting for approval {approval}",
                   AuditEvent.GUARD_BLOCKED, Guard.APPROVAL, {"approval": approval},
                   names=("outcome", "rule", "fingerprint", "dry_run"))

    @classmethod
    def failed(cls, reason: Reason, detail: str) -> Ending:
        """A step could not be planned or run."""
        return cls(Outcome.FAILED, reason, detail, AuditEvent.DECISION_FAILED, log="decision.failed")

    @classmethod
    def unavailable(cls, error: Exception) -> Ending:
        """The state store failed; the work item is taken up again."""
        return cls(Outcome.FAILED, Reason.STATE_UNAVAILABLE,
                   f"state store unavailable, nothing more was run; taken up again: {error}",
                   AuditEvent.DECISION_FAILED)

    @classmethod
    def rule_gone(cls, rule: str) -> Ending:
        """The decision names a rule a reload removed."""
        return cls(Outcome.FAILED, Reason.RULE_GONE,
                   f"rule {rule!r} is no longer loaded; the decision was dropped",
                   AuditEvent.DECISION_FAILED, extra={"rule": rule})

    @classmethod
    def crashed(cls, names: Mapping[str, str]) -> Ending:
        """A bug (logged with its traceback where it was caught); ``names``: the rule and
        fingerprint when the decision was not read (an approved plan, an unreadable item)."""
        return cls(Outcome.FAILED, Reason.CRASHED, "internal error; see the logs",
                   AuditEvent.DECISION_FAILED, extra=names, log="decision.failed")

    @classmethod
    def interrupted(cls) -> Ending:
        """Shutdown cancelled it: taken up again after the restart, so not counted as an end."""
        return cls(Outcome.FAILED, Reason.SHUTDOWN, "interrupted by shutdown; taken up again after restart",
                   AuditEvent.DECISION_FAILED, counted=False)

    @classmethod
    def at_intake(cls, guard: Guard, reason: Reason, detail: str, *, outcome: Outcome) -> Ending:
        """Stopped before it was queued (``for`` not elapsed, a duplicate)."""
        return cls(outcome, reason, detail, AuditEvent.GUARD_BLOCKED, guard, names=("rule", "fingerprint"))


class Stopped(Exception):
    """Ends a decision before its end; ``ending`` says how (internal to the receiver).

    ``stops_ladder``: a climbed rung that ends this way stops its ladder
    (``receiver.flow.verify.Verifier.stopped``).
    """

    stops_ladder: ClassVar[bool] = True

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.detail)
        self.ending = ending


class Report:
    """Writes each ending's metric, audit record and log line; one per process."""

    def __init__(self, *, audit: AuditLog, metrics: Metrics) -> None:
        self._audit = audit
        self._metrics = metrics

    def ended(self, ending: Ending, *, decision: str, d: Decision | None = None) -> None:
        """Count, record and log ``ending`` of ``decision`` (``d``: its names, when known)."""
        if ending.counted:
            self._metrics.decided(ending.outcome, ending.reason)
        if ending.guard is not None and ending.outcome in _GUARD_BLOCKS:
            self._metrics.guard_blocks.labels(ending.guard.value).inc()
        if ending.event is not None:
            fields: dict[str, Any] = {"reason": ending.reason, "detail": ending.detail}
            if "outcome" in ending.names:
                fields["outcome"] = ending.outcome
            if d is not None:
                names = {"rule": d.rule.name, "fingerprint": d.alert.fingerprint, "dry_run": d.dry_run,
                         "rung": d.rung or None}
                fields |= {k: v for k, v in names.items() if k in ending.names and v is not None}
            if ending.guard is not None:
                fields["guard"] = ending.guard
            self._audit.record(ending.event, decision=decision, **fields, **ending.extra)
        if ending.log is not None:
            guard = {} if ending.guard is None else {"guard": ending.guard}
            _log.warning(ending.log, **guard, reason=ending.reason, detail=ending.detail)

    def deferred(self, ending: Ending, *, d: Decision, attempt: int, not_before: float,
                 waited: float) -> None:
        """A transient guard sent ``d`` back to wait (``receiver.flow.deferral``): counted by guard
        and reason (not as an end: it ends later), ``guard.deferred``, a log line."""
        assert ending.guard is not None
        self._metrics.deferrals.labels(ending.guard.value, ending.reason.value).inc()
        self._audit.record(AuditEvent.GUARD_DEFERRED, decision=d.id, rule=d.rule.name,
                           fingerprint=d.alert.fingerprint, **({"rung": d.rung} if d.rung else {}),
                           guard=ending.guard, reason=ending.reason, detail=ending.detail, attempt=attempt,
                           not_before=round(not_before, 3), waited=round(waited, 3),
                           **{k: v for k, v in ending.extra.items() if k == "waits_for"})
        _log.info("decision.deferred", guard=ending.guard, reason=ending.reason, attempt=attempt,
                  not_before=round(not_before, 3))

    def attempt_succeeded(self, fields: Mapping[str, Any], *, action: str, attempt: int, seconds: float,
                          result: Result) -> None:
        """An action's attempt succeeded: its duration, ``action.succeeded``."""
        self._metrics.action_duration.labels(action, "succeeded").observe(seconds)
        self._audit.record(AuditEvent.ACTION_SUCCEEDED, attempt=attempt, result=result.as_dict(), **fields)

    def attempt_failed(self, fields: Mapping[str, Any], *, action: str, attempt: int, seconds: float,
                       reason: Reason, detail: str) -> None:
        """An action's attempt failed: its duration, ``action.failed``, a warning."""
        self._metrics.action_duration.labels(action, "failed").observe(seconds)
        self._audit.record(AuditEvent.ACTION_FAILED, attempt=attempt, reason=reason, detail=detail, **fields)
        _log.warning("action.failed", action=action, attempt=attempt, reason=reason, detail=detail)
