"""The workers: carry each queued decision through render → check → plan → execute.

Started and stopped by ``receiver.runtime``. For every step of a rule (``diagnose`` first,
then ``actions``): render the params, validate them, check the target's allow-list,
``plan()`` and audit the plan. In dry-run that is all. Live, a step whose rule needs
approval, or a cooldown, limit or verify this build cannot enforce yet, stops here;
otherwise ``action.started`` is made durable before ``execute()`` runs under its timeout,
with bounded retries for temporary failures, and the outcome is audited after.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Decision, Outcome, Reason
from receiver.metrics import Metrics
from receiver.settings import Settings
from receiver.workqueue import WorkQueue
from remediations.base import (
    Action,
    ActionContext,
    InvalidParams,
    PermanentError,
    Plan,
    RemediationError,
    Result,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.registry import Registry
from rules.errors import TemplateError
from rules.model import ActionSpec

_log = structlog.get_logger("remediator.executor")
_GUARD_REASONS = {Reason.APPROVAL_REQUIRED: "approval", Reason.GUARD_UNAVAILABLE: "unenforceable"}


class StepFailed(Exception):
    """Ends a decision early; carries the audit reason (internal to this module)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Executor:
    """Runs decisions taken from the queue by ``workers`` concurrent tasks."""

    def __init__(self, *, settings: Settings, registry: Registry, queue: WorkQueue,
                 audit: AuditLog, metrics: Metrics, clock: Clock) -> None:
        self._settings = settings
        self._registry = registry
        self._queue = queue
        self._audit = audit
        self._metrics = metrics
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for n in range(self._settings.queue.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"remediator-worker-{n}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _work(self) -> None:
        while True:
            decision = await self._queue.get()
            try:
                await self.run(decision)
            except asyncio.CancelledError:
                self._record_end(decision, AuditEvent.DECISION_FAILED, Outcome.FAILED,
                                 Reason.SHUTDOWN, "interrupted by shutdown before it finished")
                raise
            except Exception:  # a bug must not kill the worker; it is logged and audited
                _log.exception("executor.crashed", decision=decision.id)
                self._record_end(decision, AuditEvent.DECISION_FAILED, Outcome.FAILED,
                                 Reason.PERMANENT_FAILURE, "internal error; see the logs")
            finally:
                self._queue.done()
                await self._sync()

    async def _sync(self) -> None:
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))

    def _record_end(self, d: Decision, event: AuditEvent, outcome: Outcome, reason: Reason,
                    detail: str, **extra: Any) -> None:
        self._metrics.decided(outcome, reason)
        self._audit.record(event, decision=d.id, rule=d.rule.name, fingerprint=d.alert.fingerprint,
                           dry_run=d.dry_run, outcome=outcome, reason=reason, detail=detail, **extra)

    async def run(self, d: Decision) -> None:
        """Carry one decision to its end; every end is audited."""
        steps = [("diagnose", s) for s in d.rule.diagnose] + [("action", s) for s in d.rule.actions]
        with structlog.contextvars.bound_contextvars(decision=d.id, rule=d.rule.name,
                                                     fingerprint=d.alert.fingerprint):
            try:
                for number, (kind, spec) in enumerate(steps, start=1):
                    await self._step(d, number, kind, spec)
            except StepFailed as failed:
                blocked = failed.reason in _GUARD_REASONS
                self._record_end(
                    d, AuditEvent.GUARD_BLOCKED if blocked else AuditEvent.DECISION_FAILED,
                    Outcome.BLOCKED if blocked else Outcome.FAILED, failed.reason, failed.detail,
                    **({"guard": _GUARD_REASONS[failed.reason]} if blocked else {}),
                )
                if blocked:
                    self._metrics.guard_blocks.labels(_GUARD_REASONS[failed.reason]).inc()
                _log.warning("decision.stopped", reason=failed.reason, detail=failed.detail)
                return
            if d.dry_run:
                self._metrics.decided(Outcome.PLANNED, Reason.DRY_RUN)
            else:
                self._metrics.decided(Outcome.SUCCEEDED, Reason.SUCCEEDED)

    def _prepare(self, d: Decision, spec: ActionSpec) -> tuple[Action[Any], Any, ActionContext]:
        action = self._registry.get(spec.action)
        if action is None:  # the loader refuses unknown actions; a reload could race a worker
            raise StepFailed(Reason.INVALID_PARAMS, f"unknown action {spec.action!r}")
        try:
            raw = spec.render_params(d.alert)
        except TemplateError as exc:
            raise StepFailed(Reason.TEMPLATE_ERROR, f"{spec.action}: {exc}") from None
        try:
            params = action.parse_params(raw)
        except InvalidParams as exc:
            raise StepFailed(Reason.INVALID_PARAMS, str(exc)) from None
        target = None if spec.target is None else self._settings.targets.get(spec.target)
        ctx = ActionContext(decision_id=d.id, rule=d.rule.name, alert=d.alert,
                            target_name=spec.target, target=target, dry_run=d.dry_run,
                            notifiers=self._settings.notifiers)
        if spec.target is not None and target is None:
            return action, params, ctx  # the caller plans it in dry-run, refuses it live
        try:
            action.check_allowed(ctx, params)
        except TargetNotAllowed as exc:
            raise StepFailed(Reason.TARGET_NOT_ALLOWED, str(exc)) from None
        except PermanentError as exc:
            raise StepFailed(Reason.INVALID_PARAMS, str(exc)) from None
        return action, params, ctx

    def _timeout(self, action: Action[Any], spec: ActionSpec) -> float:
        return spec.timeout.total_seconds() if spec.timeout is not None else action.timeout

    async def _plan(self, action: Action[Any], params: Any, ctx: ActionContext, *, limit: float) -> Plan:
        if ctx.target_name is not None and ctx.target is None:
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
        try:
            async with asyncio.timeout(limit):
                return await action.plan(ctx, params)
        except TimeoutError:
            raise StepFailed(Reason.TIMEOUT, f"{action.name}: plan took over {limit}s") from None
        except RemediationError as exc:
            raise StepFailed(Reason.PLAN_FAILED, f"{action.name}: {exc}") from None

    async def _step(self, d: Decision, number: int, kind: str, spec: ActionSpec) -> None:
        action, params, ctx = self._prepare(d, spec)
        timeout = self._timeout(action, spec)
        plan = await self._plan(action, params, ctx, limit=timeout)
        common = {"decision": d.id, "rule": d.rule.name, "fingerprint": d.alert.fingerprint,
                  "step": number, "kind": kind, "action": spec.action, "target": spec.target,
                  "priority": d.priority, "dry_run": d.dry_run}
        self._audit.record(AuditEvent.ACTION_PLANNED, plan=plan.as_dict(), **common)
        if d.dry_run:
            return
        unenforced = [k for k in ("cooldown", "limit", "verify") if getattr(d.rule, k) is not None]
        if kind == "action" and unenforced:
            raise StepFailed(
                Reason.GUARD_UNAVAILABLE,
                f"the rule asks for {', '.join(unenforced)}, which this build cannot enforce yet, "
                "so it did not run",
            )
        if kind == "action" and d.rule.approval_required(
            d.priority, destructive=action.is_destructive(params)
        ):
            raise StepFailed(
                Reason.APPROVAL_REQUIRED,
                f"{spec.action} needs approval; this build cannot take approvals, so it did not run",
            )
        await self._execute(action, params, ctx, plan, limit=timeout, common=common)

    async def _execute(self, action: Action[Any], params: Any, ctx: ActionContext, plan: Plan, *,
                       limit: float, common: dict[str, Any]) -> None:
        retries = self._settings.guards.retries
        backoff = self._settings.guards.retry_backoff.total_seconds()
        for attempt in range(1, retries + 2):
            self._audit.record(AuditEvent.ACTION_STARTED, attempt=attempt, **common)
            try:
                await self._audit.sync()  # the record of a side effect lands before it starts
            except AuditError as exc:
                raise StepFailed(Reason.TEMPORARY_FAILURE, f"audit log unavailable: {exc}") from None
            started = time.perf_counter()
            try:
                async with asyncio.timeout(limit):
                    result: Result = await action.execute(ctx, params, plan)
            except TimeoutError:
                self._failed(action, started, Reason.TIMEOUT, f"no answer within {limit}s",
                             attempt=attempt, common=common)
                # a timed-out change may have happened: never repeat a destructive one
                if plan.destructive or attempt > retries:
                    raise StepFailed(Reason.TIMEOUT, f"{action.name} timed out") from None
            except TemporaryError as exc:
                self._failed(action, started, Reason.TEMPORARY_FAILURE, str(exc),
                             attempt=attempt, common=common)
                if attempt > retries:
                    raise StepFailed(Reason.TEMPORARY_FAILURE,
                                     f"{action.name}: gave up after {attempt} attempts: {exc}") from None
                delay = exc.retry_after if exc.retry_after is not None else backoff * 2 ** (attempt - 1)
                await self._clock.sleep(delay)
                continue
            except PermanentError as exc:
                self._failed(action, started, Reason.PERMANENT_FAILURE, str(exc),
                             attempt=attempt, common=common)
                raise StepFailed(Reason.PERMANENT_FAILURE, f"{action.name}: {exc}") from None
            else:
                self._metrics.action_duration.labels(action.name, "succeeded").observe(
                    time.perf_counter() - started)
                self._audit.record(AuditEvent.ACTION_SUCCEEDED, attempt=attempt,
                                   result=result.as_dict(), **common)
                return
            await self._clock.sleep(backoff * 2 ** (attempt - 1))

    def _failed(self, action: Action[Any], started: float, reason: Reason, detail: str, *,
                attempt: int, common: dict[str, Any]) -> None:
        self._metrics.action_duration.labels(action.name, "failed").observe(
            time.perf_counter() - started)
        self._audit.record(AuditEvent.ACTION_FAILED, attempt=attempt, reason=reason,
                           detail=detail, **common)
        _log.warning("action.failed", action=action.name, attempt=attempt, reason=reason,
                     detail=detail)
