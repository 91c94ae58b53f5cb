"""The workers: carry each work item through the guards to its end, every end audited.

Started and stopped by ``receiver.runtime``; items come from the local buffer the feeder
fills. A decision: maintenance window and kill switch (live), then every step of the rule
(``diagnose`` first, then ``actions``) rendered, validated, allow-listed and planned, the
plan audited. In dry-run that is all. Live, diagnostics run; the action steps' cooldown,
rate, blast radius and circuit breaker are checked; an approval is requested when the
rule or the action needs one (the decision ends there); otherwise the steps run through
``receiver.flow.steps``. An approved item runs the approved plans the same way. A ladder's
decision runs its rung's actions; what follows a live decision (watch, climb, escalate)
is ``receiver.flow.verify`` and ``receiver.flow.policies``, called at the points marked there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Decision, Outcome, Reason
from receiver.errors import StateError
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.approvals import Approvals
from receiver.flow.guards.budget import budget_for, check_budget
from receiver.flow.guards.circuit import Breakers
from receiver.flow.guards.killswitch import KillSwitch
from receiver.flow.guards.maintenance import active_window
from receiver.flow.policies import Policies
from receiver.flow.reload import RulesCoordinator
from receiver.flow.steps import PreparedStep, Runner, StepFailed
from receiver.flow.verify import Verifier
from receiver.flow.workitems import APPROVED, alert_from_data, decision_from_item
from receiver.flow.workqueue import WorkQueue
from receiver.metrics import Metrics
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import ApprovalStatus, Budget, WorkItem
from remediations.base import (
    Action,
    ActionContext,
    InvalidParams,
    PermanentError,
    Plan,
    RemediationError,
    TargetNotAllowed,
)
from remediations.registry import Registry
from rules.alert import Alert
from rules.errors import TemplateError
from rules.model import ActionSpec, Rule
from rules.priority import Priority

_log = structlog.get_logger("remediator.executor")
_STATE_RETRY = 5.0  # seconds before work stopped by a state store failure is tried again


@dataclass(frozen=True, slots=True)
class Guards:
    """The stateful guards the executor consults (built by the runtime)."""

    killswitch: KillSwitch
    breakers: Breakers
    approvals: Approvals
    verifier: Verifier
    policies: Policies


class Executor:
    """Runs work items taken from the local buffer by ``workers`` concurrent tasks."""

    def __init__(self, *, settings: Settings, registry: Registry, rules: RulesCoordinator, queue: WorkQueue,
                 store: StateStore, audit: AuditLog, metrics: Metrics, clock: Clock, guards: Guards,
                 runner: Runner) -> None:
        self._settings = settings
        self._registry = registry
        self._rules = rules
        self._queue = queue
        self._store = store
        self._audit = audit
        self._metrics = metrics
        self._clock = clock
        self._guards = guards
        self._runner = runner
        self._tasks: list[asyncio.Task[None]] = []
        self._finished: list[WorkItem] = []
        self._finished_ready = asyncio.Event()

    def start(self) -> None:
        for n in range(self._settings.queue.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"remediator-worker-{n}"))
        self._tasks.append(asyncio.create_task(self._complete_loop(), name="remediator-completer"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._complete_finished()

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            finished = False
            try:
                finished = await self.run_item(item)
            except asyncio.CancelledError:
                self._audit.record(AuditEvent.DECISION_FAILED, decision=item.id, outcome=Outcome.FAILED,
                                   reason=Reason.SHUTDOWN,
                                   detail="interrupted by shutdown; taken up again after restart")
                self._queue.done(item)
                raise
            except Exception:  # a bug must not kill the worker; it is logged and audited
                _log.exception("executor.crashed", decision=item.id)
                self._end(item.id, None, AuditEvent.DECISION_FAILED, Outcome.FAILED,
                          reason=Reason.PERMANENT_FAILURE, detail="internal error; see the logs")
                finished = True
            if finished:
                self._finished.append(item)
                self._finished_ready.set()
            else:  # the store failed: this process tries it again after a pause (it still holds it)
                self._tasks.append(asyncio.create_task(self._retry_later(item)))

    async def _retry_later(self, item: WorkItem) -> None:
        try:
            await asyncio.sleep(_STATE_RETRY)
            await self._queue.requeue(item)
        finally:
            self._tasks.remove(asyncio.current_task())  # type: ignore[arg-type]

    async def _complete_loop(self) -> None:
        """Remove finished items from the store once their audit records are on disk.

        Workers do not wait for the fsync themselves: every item finished meanwhile shares
        one sync and one store transaction.
        """
        while True:
            await self._finished_ready.wait()
            try:
                await self._complete_finished()
            except Exception:  # a bug must not stop completion; the items stay and are retried
                _log.exception("completer.crashed")
                await asyncio.sleep(1)

    async def _complete_finished(self) -> None:
        self._finished_ready.clear()
        items = list(self._finished)  # removed only once completed: a cancel here loses none
        if not items:
            return
        await self._sync()
        try:
            await self._store.complete([item.ref for item in items])
        except StateError as exc:  # they are taken up again and end at once (execute-once markers)
            _log.error("state.complete_failed", decisions=len(items), error=str(exc))
        del self._finished[:len(items)]
        for item in items:
            self._queue.done(item)

    async def _sync(self) -> None:
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))

    def _end(self, decision: str, d: Decision | None, event: AuditEvent, outcome: Outcome, *,
             reason: Reason, detail: str, **extra: Any) -> None:
        self._metrics.decided(outcome, reason)
        ids: dict[str, Any] = {} if d is None else {"rule": d.rule.name, "fingerprint": d.alert.fingerprint,
                                                    "dry_run": d.dry_run}
        if d is not None and d.rung:
            ids["rung"] = d.rung
        self._audit.record(event, decision=decision, outcome=outcome, reason=reason, detail=detail,
                           **ids, **extra)

    async def run_item(self, item: WorkItem) -> bool:
        """Run one item; False when the state store failed and the item should be taken again."""
        if item.payload.get("kind") == APPROVED:
            decision_id = str(item.payload.get("decision") or item.id)
            approval_id = str(item.payload["approval"])
            return await self._guarded(decision_id, None, self._run_approved(approval_id),
                                       ended=partial(self._guards.approvals.ran, approval_id))
        decision = decision_from_item(item, self._rules.index)
        if isinstance(decision, str):
            self._end(item.id, None, AuditEvent.DECISION_FAILED, Outcome.FAILED, reason=Reason.RULE_GONE,
                      detail=f"rule {decision!r} is no longer loaded; the decision was dropped",
                      rule=decision)
            return True
        if item.deliveries > 1:
            self._audit.record(AuditEvent.DECISION_RESUMED, decision=item.id, rule=decision.rule.name,
                               fingerprint=decision.alert.fingerprint, deliveries=item.deliveries)
        return await self.run(decision)

    async def run(self, d: Decision) -> bool:
        """Carry one decision to its end; False when the state store failed."""
        return await self._guarded(d.id, d, self._run_decision(d))

    async def _guarded(self, decision: str, d: Decision | None, work: Awaitable[tuple[Outcome, Reason]], *,
                       ended: Callable[[Outcome, Reason, str], Awaitable[None]] | None = None) -> bool:
        """Run ``work`` to its end (blocked, failed or done) and audit it; ``ended`` is told how
        it ended (not when the store failed: it is taken up again)."""
        bind = {"decision": decision} | ({} if d is None else {"rule": d.rule.name,
                                                                "fingerprint": d.alert.fingerprint})
        with structlog.contextvars.bound_contextvars(**bind):
            try:
                outcome, reason = await work
            except Blocked as blocked:
                if d is not None:
                    await self._guards.verifier.stopped(d, reason=blocked.reason, detail=blocked.detail)
                if blocked.guard is Guard.BLAST_RADIUS:  # it stays paused until an admin resumes
                    try:
                        await self._guards.killswitch.pause(actor="system", detail=blocked.detail,
                                                            source="blast_radius")
                    except (StateError, AuditError) as exc:  # the next decision trips it again
                        _log.error("blast_radius.pause_failed", error=str(exc))
                self._metrics.guard_blocks.labels(blocked.guard.value).inc()
                self._end(decision, d, AuditEvent.GUARD_BLOCKED, Outcome.BLOCKED, reason=blocked.reason,
                          detail=blocked.detail, guard=blocked.guard,
                          **({"retry_after": round(blocked.retry_after, 3)}
                             if blocked.retry_after is not None else {}))
                _log.warning("decision.blocked", guard=blocked.guard, reason=blocked.reason,
                             detail=blocked.detail)
                end = (Outcome.BLOCKED, blocked.reason, blocked.detail)
            except StepFailed as failed:
                if d is not None:
                    await self._guards.verifier.stopped(d, reason=failed.reason, detail=failed.detail)
                self._end(decision, d, AuditEvent.DECISION_FAILED, Outcome.FAILED, reason=failed.reason,
                          detail=failed.detail)
                _log.warning("decision.failed", reason=failed.reason, detail=failed.detail)
                end = (Outcome.FAILED, failed.reason, failed.detail)
            except StateError as exc:
                self._end(decision, d, AuditEvent.DECISION_FAILED, Outcome.FAILED,
                          reason=Reason.STATE_UNAVAILABLE,
                          detail=f"state store unavailable, nothing more was run; taken up again: {exc}")
                return False
            else:
                self._metrics.decided(outcome, reason)
                end = (outcome, reason, "")
        if ended is not None:
            await ended(*end)
        return True

    async def _run_decision(self, d: Decision) -> tuple[Outcome, Reason]:
        if not d.dry_run:
            window = active_window(self._settings.guards.maintenance, d.alert, self._clock.now())
            if window is not None:
                raise Blocked(Guard.MAINTENANCE, Reason.MAINTENANCE,
                              f"maintenance window {window.name!r} holds this alert")
            await self._guards.policies.started(d)  # a P1 escalates even while paused
            await self._guards.killswitch.check()
        if d.rung >= len(d.rule.steps):
            raise StepFailed(Reason.RULE_GONE, f"rule {d.rule.name} has no rung {d.rung} any more")
        diagnostics: list[dict[str, Any]] = []
        actions: list[PreparedStep] = []
        rung = d.rule.steps[d.rung]
        steps = [("diagnose", s) for s in d.rule.diagnose] + [("action", s) for s in rung.actions]
        for number, (kind, spec) in enumerate(steps, start=1):
            step = await self._plan_step(d, number, kind, spec)
            if kind == "action":
                actions.append(step)
            elif not d.dry_run:
                result = await self._runner.execute(step, fence=None)
                diagnostics.append({"step": number, "action": spec.action, "result": result.as_dict()})
        if d.dry_run:
            self._guards.verifier.skipped(d)
            return Outcome.PLANNED, Reason.DRY_RUN
        await self._guards.policies.planned(d, [s.subject for s in actions])
        for step in actions:  # peek: spend nothing before a human has said yes
            await check_budget(self._store, self._budget(d.id, d.rule, step, d.rung), d.rule, spend=False)
            if step.ctx.target_name is not None:
                await self._guards.breakers.check(step.ctx.target_name)
        if any(self._needs_approval(d.rule, d.rung, d.priority, s) for s in actions):
            approval = await self._guards.approvals.request(
                d, steps=[s.as_data() for s in actions], diagnostics=diagnostics)
            self._metrics.guard_blocks.labels(Guard.APPROVAL.value).inc()
            self._audit.record(AuditEvent.GUARD_BLOCKED, decision=d.id, rule=d.rule.name,
                               fingerprint=d.alert.fingerprint, dry_run=d.dry_run,
                               outcome=Outcome.AWAITING_APPROVAL, reason=Reason.APPROVAL_REQUIRED,
                               detail=f"waiting for approval {approval.id}", guard=Guard.APPROVAL,
                               approval=approval.id)
            return Outcome.AWAITING_APPROVAL, Reason.APPROVAL_REQUIRED
        await self._run_actions(d.id, d.rule, actions, d.rung)
        await self._guards.verifier.acted(decision=d.id, rule=d.rule, rung=d.rung, alert=d.alert,
                                          priority=d.priority.value,
                                          response_target=d.response_target.total_seconds())
        return Outcome.SUCCEEDED, Reason.SUCCEEDED

    @staticmethod
    def _needs_approval(rule: Rule, rung: int, priority: Priority, step: PreparedStep) -> bool:
        needs = rule.approval_required(priority, destructive=step.plan.destructive, rung=rung)
        return step.action.approval_always or needs

    def _budget(self, decision: str, rule: Rule, step: PreparedStep, rung: int) -> Budget:
        # The decision pays, not each step: its second step on the same subject is not
        # held back by its own first, and the rate limit and blast radius count decisions.
        return budget_for(self._settings, rule, step.subject, decision, rung=rung)

    async def _run_actions(self, decision: str, rule: Rule, steps: list[PreparedStep], rung: int) -> None:
        for step in steps:
            await self._runner.run_guarded(decision, step, rule=rule,
                                           budget=self._budget(decision, rule, step, rung))

    async def _run_approved(self, approval_id: str) -> tuple[Outcome, Reason]:
        approval = await self._guards.approvals.get(approval_id)
        if approval.status is not ApprovalStatus.APPROVED:
            raise Blocked(Guard.APPROVAL, Reason.APPROVAL_REQUIRED,
                          f"approval {approval_id} is {approval.status.value}; nothing was run")
        rule = self._rules.index.rule(approval.rule)
        if rule is None:
            raise StepFailed(Reason.RULE_GONE, f"rule {approval.rule!r} is no longer loaded; "
                             f"approval {approval_id} was not run")
        data = approval.payload
        alert = alert_from_data(data["alert"])
        if self._settings.dry_run or rule.dry_run:
            which = "the service" if self._settings.dry_run else "the rule"
            raise Blocked(Guard.DRY_RUN, Reason.DRY_RUN,
                          f"approval {approval_id} was approved, but {which} is in dry-run now, "
                          "so nothing was run")
        window = active_window(self._settings.guards.maintenance, alert, self._clock.now())
        if window is not None:
            raise Blocked(Guard.MAINTENANCE, Reason.MAINTENANCE,
                          f"maintenance window {window.name!r} holds this alert; approval {approval_id} "
                          "was not run")
        steps = [self._restore_step(approval.decision, rule.name, alert, s) for s in data["steps"]]
        rung = int(data.get("rung", 0))
        await self._run_actions(approval.decision, rule, steps, rung)
        await self._guards.verifier.acted(decision=approval.decision, rule=rule, rung=rung, alert=alert,
                                          priority=data["priority"],
                                          response_target=float(data.get("response_target", 0.0)))
        _log.info("approval.ran", approval=approval_id, priority=data["priority"])
        return Outcome.SUCCEEDED, Reason.APPROVED

    def _restore_step(self, decision: str, rule: str, alert: Alert, data: dict[str, Any]) -> PreparedStep:
        action = self._registry.get(data["action"])
        if action is None:
            raise StepFailed(Reason.INVALID_PARAMS, f"unknown action {data['action']!r}")
        params = self._parse(action, data["params"])
        target = None if data["target"] is None else self._settings.targets.get(data["target"])
        if data["target"] is not None and target is None:
            raise StepFailed(Reason.TARGET_UNKNOWN, f"target {data['target']!r} is no longer configured")
        ctx = ActionContext(decision_id=decision, rule=rule, alert=alert, target_name=data["target"],
                            target=target, dry_run=False, notifiers=self._settings.notifiers)
        self._check_allowed(action, ctx, params)
        return PreparedStep(number=data["number"], kind="action", action=action, params=params, ctx=ctx,
                            plan=Plan.from_dict(data["plan"]), subject=data["subject"],
                            raw_params=data["params"], timeout=data["timeout"],
                            priority=data.get("priority"))

    @staticmethod
    def _parse(action: Action[Any], raw: Any) -> Any:
        try:
            return action.parse_params(raw)
        except InvalidParams as exc:
            raise StepFailed(Reason.INVALID_PARAMS, str(exc)) from None

    @staticmethod
    def _check_allowed(action: Action[Any], ctx: ActionContext, params: Any) -> None:
        try:
            action.check_allowed(ctx, params)
        except TargetNotAllowed as exc:
            raise StepFailed(Reason.TARGET_NOT_ALLOWED, str(exc)) from None
        except PermanentError as exc:
            raise StepFailed(Reason.INVALID_PARAMS, str(exc)) from None

    async def _plan_step(self, d: Decision, number: int, kind: str, spec: ActionSpec) -> PreparedStep:
        action = self._registry.get(spec.action)
        if action is None:  # the loader refuses unknown actions; a reload could race a worker
            raise StepFailed(Reason.INVALID_PARAMS, f"unknown action {spec.action!r}")
        try:
            raw = spec.render_params(d.alert)
        except TemplateError as exc:
            raise StepFailed(Reason.TEMPLATE_ERROR, f"{spec.action}: {exc}") from None
        params = self._parse(action, raw)
        target = None if spec.target is None else self._settings.targets.get(spec.target)
        ctx = ActionContext(decision_id=d.id, rule=d.rule.name, alert=d.alert, target_name=spec.target,
                            target=target, dry_run=d.dry_run, notifiers=self._settings.notifiers)
        timeout = spec.timeout.total_seconds() if spec.timeout is not None else action.timeout
        if spec.target is not None and target is None:
            plan = self._plan_missing_target(action, params, ctx)
        else:
            self._check_allowed(action, ctx, params)
            plan = await self._plan(action, params, ctx, limit=timeout)
        step = PreparedStep(number=number, kind=kind, action=action, params=params, ctx=ctx, plan=plan,
                            subject=action.subject(ctx, params),
                            raw_params=params.model_dump(mode="json", by_alias=True), timeout=timeout,
                            priority=d.priority.value)
        self._audit.record(AuditEvent.ACTION_PLANNED, plan=plan.as_dict(), **step.common(d.id))
        return step

    @staticmethod
    def _plan_missing_target(action: Action[Any], params: Any, ctx: ActionContext) -> Plan:
        if not ctx.dry_run:
            raise StepFailed(Reason.TARGET_UNKNOWN, f"{action.name}: target {ctx.target_name!r} "
                             "is not in the service config, so nothing was run")
        # Dry-run still shows what would be asked of the target, as far as it can be known.
        rendered = params.model_dump(mode="json", by_alias=True)
        return Plan(
            action=action.name, target=ctx.target_name, destructive=action.is_destructive(params),
            steps=(f"{action.name} on target {ctx.target_name!r}, which the service config does "
                   "not define: a live run is refused until it does",
                   "with params " + json.dumps(rendered, sort_keys=True)),
            details={"target_missing": True, "params": rendered},
        )

    @staticmethod
    async def _plan(action: Action[Any], params: Any, ctx: ActionContext, *, limit: float) -> Plan:
        try:
            async with asyncio.timeout(limit):
                return await action.plan(ctx, params)
        except TimeoutError:
            raise StepFailed(Reason.TIMEOUT, f"{action.name}: plan took over {limit}s") from None
        except RemediationError as exc:
            raise StepFailed(Reason.PLAN_FAILED, f"{action.name}: {exc}") from None
