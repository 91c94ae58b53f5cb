"""Deferral: accepted work an open circuit or a held target lock stopped waits instead of ending.

Built by ``receiver.runtime``; called by ``receiver.flow.workers`` for every decision (or
approved plan) a guard stopped and for every one that comes back from waiting. Which stops are transient is
:data:`TRANSIENT` (an open circuit, a half-open circuit's trial in progress, a held target
lock); every other stop ends the decision as before. :func:`plan` is the pure decision:
wait until the circuit half-opens (the guard's ``retry_after``), or, for a lock or a trial,
``guards.defer.retry`` doubling up to ``max_delay`` — or sooner: what it waits for
(``waits_for``: the lock's holder letting it go wakes the longest-waiting decision, the
circuit closing wakes all of its; ``StateStore.wake_deferred``); never past the bound (``max_wait`` from
the first deferral, ``max_attempts``), where the work is given up and escalated
(``defer_exhausted``), never dropped silently. A deferred decision leaves the queue for the
store's deferred items (``StateStore.defer``, one transaction or script, so it is in exactly
one place), is queued again when due (the feeder's ``release_deferred``) and then meets the
whole guard pipeline again — unless its alert resolved meanwhile (the resolved marker intake
claims per fingerprint and ``startsAt``): then it ends ``guard.blocked`` ``alert_resolved``.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from receiver.audit import AuditError, AuditLog
from receiver.clock import Clock
from receiver.decisions import Decision, Escalation, Guard, Reason
from receiver.errors import NotFound
from receiver.flow.codec import ApprovalRequest, ApprovedWork, Deferral
from receiver.flow.escalation import Case, Escalations
from receiver.flow.guards.approvals import Approvals
from receiver.flow.reload import RulesCoordinator
from receiver.flow.report import Ending, Report
from receiver.flow.verify import resolved_marker
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import WorkItem

_log = structlog.get_logger("remediator.deferral")

TRANSIENT = frozenset({
    (Guard.CIRCUIT_BREAKER, Reason.CIRCUIT_OPEN),
    (Guard.CIRCUIT_BREAKER, Reason.CIRCUIT_TRIAL),
    (Guard.TARGET_LOCK, Reason.TARGET_LOCKED),
})
"""The (guard, reason) stops that pass: the work waits and is tried again."""


@dataclass(frozen=True, slots=True)
class Bound:
    """``guards.defer``, in seconds."""

    max_wait: float
    max_attempts: int
    retry: float
    max_delay: float

    @classmethod
    def of(cls, settings: Settings) -> Bound:
        d = settings.guards.defer
        return cls(max_wait=d.max_wait.total_seconds(), max_attempts=d.max_attempts,
                   retry=d.retry.total_seconds(), max_delay=d.max_delay.total_seconds())


@dataclass(frozen=True, slots=True)
class Wait:
    """Defer until ``not_before``, carrying ``deferral``."""

    not_before: float
    deferral: Deferral


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The bound is reached after ``attempts`` deferrals over ``waited`` seconds."""

    attempts: int
    waited: float


def plan(ending: Ending, before: Deferral | None, *, now: float, bound: Bound) -> Wait | GiveUp | None:
    """What to do with a decision that ``ending`` stopped, having been deferred ``before``:
    None when the stop is not transient (it ends there)."""
    if ending.guard is None or (ending.guard, ending.reason) not in TRANSIENT:
        return None
    attempts = before.attempts if before is not None else 0
    since = before.since if before is not None else now
    if attempts >= bound.max_attempts or now - since >= bound.max_wait:
        return GiveUp(attempts, now - since)
    retry_after = ending.extra.get("retry_after")
    if retry_after is not None and float(retry_after) > 0:
        delay = float(retry_after)  # the circuit half-opens then
    else:
        delay = min(bound.retry * 2 ** min(attempts, 32), bound.max_delay)
    return Wait(min(now + delay, since + bound.max_wait),
                Deferral(attempts + 1, since, ending.guard.value, ending.reason.value))


class Deferrals:
    """Defers, gives up and checks resolutions; one per process."""

    def __init__(self, settings: Settings, *, store: StateStore, audit: AuditLog, report: Report,
                 escalations: Escalations, clock: Clock, approvals: Approvals,
                 rules: RulesCoordinator) -> None:
        self._bound = Bound.of(settings)
        self._store = store
        self._audit = audit
        self._report = report
        self._escalations = escalations
        self._clock = clock
        self._approvals = approvals
        self._rules = rules

    def plan(self, ending: Ending, item: WorkItem) -> Wait | GiveUp | None:
        return plan(ending, Deferral.of(item), now=self._clock.now(), bound=self._bound)

    async def resolved(self, item: WorkItem, d: Decision) -> Ending | None:
        """How a deferred decision ends because its alert resolved while it waited; None when
        it was not deferred, still fires, or answers the resolution itself (a rule with
        ``status: resolved``); raises ``StateError`` when the store cannot say."""
        deferral = Deferral.of(item)
        if deferral is None or d.alert.status != "firing" \
                or not await self._store.claimed(resolved_marker(d.alert)):
            return None
        waited = self._clock.now() - deferral.since
        return Ending.blocked(Guard(deferral.guard), Reason.ALERT_RESOLVED,
                              f"the alert resolved while this decision waited ({deferral.reason}, "
                              f"{deferral.attempts} deferrals over {waited:.0f}s); not run")

    async def defer(self, item: WorkItem, d: Decision, ending: Ending, wait: Wait) -> None:
        """Record the deferral (durably), then move the work to the store's deferred items."""
        self._report.deferred(ending, d=d, attempt=wait.deferral.attempts, not_before=wait.not_before,
                              waited=self._clock.now() - wait.deferral.since)
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))
        waits_for = ending.extra.get("waits_for")
        await self._store.defer(item.ref, wait.deferral.onto(item), not_before=wait.not_before,
                                wake=None if waits_for is None else str(waits_for), rank=wait.deferral.since)

    async def approved(self, work: ApprovedWork) -> Decision | None:
        """The decision an approved plan answers, as its approval keeps it (None when the approval
        or its rule is gone)."""
        try:
            approval = await self._approvals.get(work.approval)
        except NotFound:
            return None
        rule = self._rules.index.rule(approval.rule)
        return None if rule is None else ApprovalRequest.of_approval(approval).decision(approval, rule)

    async def give_up(self, d: Decision, ending: Ending, gave_up: GiveUp, *, escalate: bool) -> Ending:
        """The bound is reached: how the decision ends, escalated here when ``escalate`` (a
        climbed rung's stop is escalated as its ladder stopping, ``receiver.flow.verify``)."""
        assert ending.guard is not None
        detail = (f"waited {gave_up.waited:.0f}s over {gave_up.attempts} deferrals behind "
                  f"{ending.guard.value} ({ending.reason.value}), the bound of guards.defer; not run, "
                  f"a human should look: {ending.detail}")
        if escalate:
            await self._escalations.send(Case(
                reason=Escalation.DEFER_EXHAUSTED, key=d.id, detail=detail,
                about={"fingerprint": d.alert.fingerprint}, rule=d.rule.name, priority=d.priority,
                response_target=d.response_target.total_seconds(), alertname=d.alert.name, decision=d.id,
                to=d.rule.escalate_to))
        return Ending.blocked(ending.guard, Reason.DEFER_EXHAUSTED, detail) \
            .with_extra(waited_for=ending.reason.value, deferrals=gave_up.attempts,
                        waited=round(gave_up.waited, 3))
