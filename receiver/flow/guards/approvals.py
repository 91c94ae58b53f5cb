"""Approvals: a human says yes or no to a decision's plan before it runs.

A stage of ``receiver.flow.guards.pipeline`` twice: last before a live decision's steps run
(when the rule or an action needs a human, an approval is requested and announced, and
the decision ends waiting: :class:`AwaitingApproval`), and first before an approved plan
runs (it must still be approved). Decided through ``receiver.http.api``
(``POST /api/v1/approvals/{id}/approve|reject``, approver role) or the CLI that calls it.
An approval keeps a ``receiver.flow.codec.ApprovalRequest``: the plans as planned, the
diagnostics the rule asked for and the alert; it expires after ``guards.approval_ttl``; a
resolved notification for the alert cancels it (the store moves it, with the request's other
resolved alerts, ``receiver.flow.resolution``; :meth:`Approvals.closed` audits it). Approving
queues the plans as work (``receiver.flow.enqueue``), so approving twice, from any replica,
runs once: only one call moves it out of pending. The one call that rejects it or expires it
unanswered hands it to ``on_declined`` (the runtime passes ``receiver.flow.verify``'s, which
escalates a ladder stopped there); a cancelled one is not. The workers report how an approved
plan's run ended (:meth:`Approvals.ran`) to whoever asked with :meth:`Approvals.on_ran` (the
Slack message of the approval shows the result). The notice itself is
``receiver.flow.notices``'s.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

import structlog

from receiver.audit import AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Decision, Outcome, Reason
from receiver.errors import Conflict, NotFound, StateError
from receiver.flow.announce import Announcer
from receiver.flow.codec import ApprovalRequest, ApprovedWork, Diagnostic, SavedStep
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import ApprovedRun, DecisionRun
from receiver.flow.notices import approval_notice, iso
from receiver.flow.report import Ending, Stopped
from receiver.flow.steps import PreparedStep
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import Approval, ApprovalStatus

_log = structlog.get_logger("remediator.approvals")
RanListener = Callable[[Approval, str, str, str], Awaitable[None]]

_EVENTS = {
    ApprovalStatus.APPROVED: AuditEvent.APPROVAL_APPROVED,
    ApprovalStatus.REJECTED: AuditEvent.APPROVAL_REJECTED,
    ApprovalStatus.EXPIRED: AuditEvent.APPROVAL_EXPIRED,
    ApprovalStatus.CANCELLED: AuditEvent.APPROVAL_CANCELLED,
}


_KEEP = 7 * 24 * 3600.0  # how long an approved plan may still be queued after the approval
_GRACE = 30.0  # the approving call queues it itself within this


def _queued_marker(approval_id: str) -> str:
    return f"approval-queued\x1f{approval_id}"


class AwaitingApproval(Stopped):
    """The decision waits for a human (its ladder is not stopped: the approval decides)."""

    stops_ladder: ClassVar[bool] = False

    def __init__(self, approval: Approval) -> None:
        super().__init__(Ending.held(approval.id))
        self.approval = approval


def needs_approval(d: Decision, step: PreparedStep) -> bool:
    """Whether the rule (at ``d``'s priority and rung) or the action wants a human for ``step``."""
    needs = d.rule.approval_required(d.priority, destructive=step.plan.destructive, rung=d.rung)
    return step.action.approval_always or needs


class Approvals:
    """Requests, decisions, cancellations and expiry of approvals."""

    def __init__(self, settings: Settings, *, store: StateStore, audit: AuditLog, announcer: Announcer,
                 clock: Clock, enqueue: Callable[[ApprovedWork], Awaitable[None]],
                 on_declined: Callable[[Approval], Awaitable[None]] | None = None) -> None:
        self._ttl = settings.guards.approval_ttl.total_seconds()
        self._top = settings.priorities.levels[0]
        self._store = store
        self._audit = audit
        self._announcer = announcer
        self._clock = clock
        self._enqueue = enqueue
        self._on_declined = on_declined
        self._buttons = settings.slack is not None
        self._console = settings.console.external_url
        self._ran: list[RanListener] = []

    async def check_decision(self, run: DecisionRun) -> None:
        """The stage before a live decision's steps: ask a human when one is needed."""
        if any(needs_approval(run.d, step) for step in run.actions):
            raise AwaitingApproval(await self.request(run.d, steps=[s.saved() for s in run.actions],
                                                      diagnostics=run.diagnostics))

    async def check_approved(self, run: ApprovedRun) -> None:
        """The stage before an approved plan runs: it must still be approved."""
        approval = run.approval
        if approval.status is not ApprovalStatus.APPROVED:
            raise Blocked(Guard.APPROVAL, Reason.APPROVAL_REQUIRED,
                          f"approval {approval.id} is {approval.status.value}; nothing was run")

    async def request(self, d: Decision, *, steps: Sequence[SavedStep],
                      diagnostics: Sequence[Diagnostic]) -> Approval:
        """Store a pending approval for ``d``'s action steps, audit it and announce it."""
        now = self._clock.now()
        approval = Approval(
            id=secrets.token_hex(8), status=ApprovalStatus.PENDING, created_at=now,
            expires_at=now + self._ttl, decision=d.id, rule=d.rule.name, fingerprint=d.alert.fingerprint,
            payload=ApprovalRequest.of(d, tuple(steps), tuple(diagnostics),
                                       urgent=d.priority == self._top).as_data(),
        )
        await self._store.put_approval(approval)
        self._audit.record(AuditEvent.APPROVAL_REQUESTED, approval=approval.id, decision=d.id,
                           rule=d.rule.name, fingerprint=d.alert.fingerprint, priority=d.priority,
                           expires_at=iso(approval.expires_at),
                           plans=[s.plan.as_dict() for s in steps])
        await self._audit.sync()
        notice = approval_notice(approval, buttons=self._buttons, console=self._console)
        await self._announcer.announce(notice)
        return approval

    async def get(self, approval_id: str) -> Approval:
        approval = await self._store.get_approval(approval_id)
        if approval is None:
            raise NotFound(f"no approval {approval_id!r}")
        return approval

    async def list(self, statuses: Sequence[ApprovalStatus] | None = None) -> list[Approval]:
        return await self._store.list_approvals(statuses)

    async def decide(self, approval_id: str, *, approve: bool, actor: str, comment: str | None) -> Approval:
        """Approve (and queue the plans) or reject; :class:`Conflict` when it is no longer pending."""
        current = await self.get(approval_id)
        if current.status is ApprovalStatus.PENDING and current.expires_at <= self._clock.now():
            await self._close(current, ApprovalStatus.EXPIRED, "expired unanswered")
            await self._audit.sync()
        to = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        result = await self._store.decide_approval(approval_id, to, actor=actor, comment=comment)
        approval = result.approval
        if approval is None:
            raise NotFound(f"no approval {approval_id!r}")
        if not result.changed:
            who = f" by {approval.decided_by}" if approval.decided_by else ""
            raise Conflict(f"approval {approval_id} is {approval.status.value}{who}, not pending; "
                           "nothing was run")
        self._record(approval)
        await self._audit.sync()
        if approve:
            await self._queue_run(approval)
        else:
            await self._declined(approval)
        return approval

    def on_ran(self, listener: RanListener) -> None:
        """Call ``listener(approval, outcome, reason, detail)`` when an approved plan's run ends."""
        self._ran.append(listener)

    async def ran(self, approval_id: str, outcome: Outcome, reason: Reason, detail: str) -> None:
        """The executor says how the run of an approved plan ended; the listeners' failures are
        logged, never the executor's."""
        if not self._ran:
            return
        try:
            approval = await self.get(approval_id)
        except (NotFound, StateError) as exc:
            _log.warning("approval.ran_unreported", approval=approval_id, error=str(exc))
            return
        for listener in self._ran:
            try:
                await listener(approval, outcome.value, reason.value, detail)
            except Exception:
                _log.exception("approval.ran_listener_failed", approval=approval_id)

    async def _declined(self, approval: Approval) -> None:
        if self._on_declined is not None:
            await self._on_declined(approval)

    async def _queue_run(self, approval: Approval) -> None:
        """Queue an approved plan and mark it queued (``requeue_approved`` repairs a gap between)."""
        await self._enqueue(ApprovedWork(approval=approval.id, decision=approval.decision))
        await self._store.claim([_queued_marker(approval.id)], ttl=_KEEP)

    async def requeue_approved(self) -> int:
        """Queue approved plans whose queueing was cut short (a store error or a crash right
        after the approval); how many. A plan queued twice still runs once: its steps carry
        execute-once markers."""
        now = self._clock.now()
        queued = 0
        for approval in await self._store.list_approvals([ApprovalStatus.APPROVED]):
            recent = approval.decided_at is not None and now - _KEEP < approval.decided_at <= now - _GRACE
            if recent and (await self._store.claim([_queued_marker(approval.id)], ttl=_KEEP))[0]:
                await self._enqueue(ApprovedWork(approval=approval.id, decision=approval.decision))
                queued += 1
        return queued

    def _record(self, approval: Approval) -> None:
        self._audit.record(_EVENTS[approval.status], approval=approval.id, decision=approval.decision,
                           rule=approval.rule, fingerprint=approval.fingerprint, actor=approval.decided_by,
                           comment=approval.comment)

    async def _close(self, approval: Approval, to: ApprovalStatus, why: str) -> bool:
        """Move a pending approval to ``to`` (or to expired, when it is past its expiry)."""
        now = self._clock.now()
        result = await self._store.decide_approval(approval.id, to, actor="system", comment=why)
        moved = result.approval
        if moved is None:
            return False
        # The store expires an overdue approval instead of cancelling it: audit that too.
        expired_now = moved.status is ApprovalStatus.EXPIRED and moved.decided_at == now
        if result.changed or expired_now:
            self._record(moved)
            if result.changed and to is ApprovalStatus.EXPIRED:
                await self._declined(moved)  # not one expired while cancelling: that alert resolved
            return moved.status is to
        return False

    def closed(self, moved: Sequence[Approval]) -> int:
        """Audit the approvals an alert's resolution moved out of pending (cancelled, or expired:
        past their expiry, handed to nobody: that alert resolved); how many were cancelled."""
        for approval in moved:
            self._record(approval)
        return sum(a.status is ApprovalStatus.CANCELLED for a in moved)

    async def expire_due(self) -> int:
        """Expire pending approvals past their expiry; how many."""
        now = self._clock.now()
        closed = 0
        for approval in await self._store.list_approvals([ApprovalStatus.PENDING]):
            if approval.expires_at <= now:
                closed += await self._close(approval, ApprovalStatus.EXPIRED, "expired unanswered")
        if closed:
            await self._audit.sync()
        return closed
