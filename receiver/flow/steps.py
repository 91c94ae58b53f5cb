"""A prepared step and its execution.

Called by ``receiver.flow.decide``. :meth:`Steps.plan` renders, validates, allow-lists and
plans one step of a rule (``action.planned`` audited); :meth:`PreparedStep.saved` is what
an approval keeps of an action step and :meth:`Steps.restore` makes it a step again
(validated and allow-listed again, the plan as approved): the one place a step, and its
``ActionContext``, is built. :meth:`Steps.execute` runs a step — directly for diagnostics
(read-only), through ``receiver.flow.guards.pipeline`` for action steps, which passes what
the guards hold (``receiver.flow.attempts.AttemptHooks``): checked before each attempt (the
kill switch on a retry, the lock's fence), told just before a request may go out (the
execute-once marker becomes ``sending``) and when an attempt failed with nothing sent (the
marker is claimed again while the worker waits to retry). ``action.started`` is made
durable before ``execute()`` runs under its timeout; temporary
failures are retried with backoff on the injected clock, but a destructive action whose
outcome is unknown (a timeout, a 5xx after the request went out) is never repeated unless
it re-reads state first. An action that crashes (an exception no action should raise) ends
its attempt as ``action.failed`` with reason ``crashed``, is never repeated, and fails its
decision like any other failure: every ``action.started`` has its ending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Decision, Reason
from receiver.flow.attempts import AttemptHooks
from receiver.flow.codec import SavedStep
from receiver.flow.eager import within
from receiver.flow.parsed import Parsed, ParsedMemo, subject
from receiver.flow.report import Ending, Report, Stopped
from receiver.settings import Settings
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
from remediations.blocking import BlockingCalls
from remediations.registry import Registry
from rules.alert import Alert
from rules.errors import TemplateError
from rules.model import ActionSpec

_log = structlog.get_logger("remediator.executor")


class StepFailed(Stopped):
    """Ends a decision as failed; carries the audit reason (internal to the receiver)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(Ending.failed(reason, detail))
        self.reason = reason
        self.detail = detail


def action_context(settings: Settings, *, decision: str, rule: str, alert: Alert, target: str | None,
                   dry_run: bool, calls: BlockingCalls) -> ActionContext:
    """What an action knows of the decision it serves (its target's config, if configured), and
    the pool its blocking SDK calls run on."""
    return ActionContext(decision_id=decision, rule=rule, alert=alert, target_name=target,
                         target=None if target is None else settings.targets.get(target), dry_run=dry_run,
                         calls=calls, notifiers=settings.notifiers)


@dataclass(frozen=True, slots=True)
class PreparedStep:
    """One rendered, validated, allow-listed and planned step of a decision."""

    number: int
    kind: str
    action: Action[Any]
    params: Any
    ctx: ActionContext
    plan: Plan
    subject: str
    raw_params: Any
    timeout: float
    priority: str | None = None

    def fields(self) -> dict[str, Any]:
        """The fields every audit record of this step carries."""
        return {"decision": self.ctx.decision_id, "rule": self.ctx.rule,
                "fingerprint": self.ctx.alert.fingerprint, "step": self.number, "kind": self.kind,
                "action": self.action.name,
                "target": self.ctx.target_name, "priority": self.priority, "dry_run": self.ctx.dry_run}

    def saved(self) -> SavedStep:
        """What an approval keeps to run this step once approved (:meth:`Steps.restore`)."""
        return SavedStep(number=self.number, action=self.action.name, target=self.ctx.target_name,
                         params=self.raw_params, plan=self.plan, subject=self.subject, timeout=self.timeout,
                         priority=self.priority)


class Steps:
    """Prepares and executes steps; one per process, shared by the workers."""

    def __init__(self, settings: Settings, *, registry: Registry, calls: BlockingCalls, audit: AuditLog,
                 report: Report, clock: Clock) -> None:
        self._settings = settings
        self._registry = registry
        self._calls = calls
        self._audit = audit
        self._report = report
        self._clock = clock
        self._memo = ParsedMemo()

    async def plan(self, d: Decision, number: int, kind: str, spec: ActionSpec) -> PreparedStep:
        """Step ``number`` of ``d`` (``kind`` diagnose or action) rendered and planned; audited."""
        action = self._action(spec.action)
        try:
            raw = action.render_params(spec.compiled_params, d.alert)
        except TemplateError as exc:
            raise StepFailed(Reason.TEMPLATE_ERROR, f"{spec.action}: {exc}") from None
        except InvalidParams as exc:  # a label's value the action refuses where it lands
            raise StepFailed(Reason.INVALID_PARAMS, str(exc)) from None
        parsed = self._parsed(spec, action, raw)
        params = parsed.params
        ctx = action_context(self._settings, decision=d.id, rule=d.rule.name, alert=d.alert,
                             target=spec.target, dry_run=d.dry_run, calls=self._calls)
        timeout = spec.timeout.total_seconds() if spec.timeout is not None else action.timeout
        if spec.target is not None and ctx.target is None:
            if not ctx.dry_run or parsed.missing is None:
                parsed.missing = _plan_missing_target(action, params, ctx)
            plan = parsed.missing
        else:
            _check_allowed(action, ctx, params)
            plan = await _plan(action, params, ctx, limit=timeout)
        step = PreparedStep(number=number, kind=kind, action=action, params=params, ctx=ctx, plan=plan,
                            subject=subject(action, ctx, parsed), raw_params=parsed.raw, timeout=timeout,
                            priority=d.priority)
        self._audit.record(AuditEvent.ACTION_PLANNED, plan=plan.as_dict(), **step.fields())
        return step

    def _parsed(self, spec: ActionSpec, action: Action[Any], raw: Any) -> Parsed:
        """``raw`` (``spec`` rendered) parsed, or as parsed for an earlier decision
        (``receiver.flow.parsed``)."""
        parsed, key = self._memo.get(spec, raw)
        if parsed is None:
            params = _parse(action, raw)
            parsed = Parsed(params=params, raw=params.model_dump(mode="json", by_alias=True))
            if key is not None:
                self._memo.keep(spec, key, parsed)
        return parsed

    def restore(self, d: Decision, saved: SavedStep) -> PreparedStep:
        """An approved step again, for ``d`` live: params and allow-list checked now, the plan as approved."""
        action = self._action(saved.action)
        params = _parse(action, saved.params)
        ctx = action_context(self._settings, decision=d.id, rule=d.rule.name, alert=d.alert,
                             target=saved.target, dry_run=False, calls=self._calls)
        if saved.target is not None and ctx.target is None:
            raise StepFailed(Reason.TARGET_UNKNOWN, f"target {saved.target!r} is no longer configured")
        _check_allowed(action, ctx, params)
        return PreparedStep(number=saved.number, kind="action", action=action, params=params, ctx=ctx,
                            plan=saved.plan, subject=saved.subject, raw_params=saved.params,
                            timeout=saved.timeout, priority=saved.priority)

    def _action(self, name: str) -> Action[Any]:
        action = self._registry.get(name)
        if action is None:  # the loader refuses unknown actions; a reload could race a worker
            raise StepFailed(Reason.INVALID_PARAMS, f"unknown action {name!r}")
        return action

    async def execute(self, step: PreparedStep, hooks: Sequence[AttemptHooks] = ()) -> Result:
        """Execute with retries, ``hooks`` told around every attempt; :class:`StepFailed` when it
        finally fails."""
        action, fields = step.action, step.fields()
        retries = self._settings.guards.retries
        backoff = self._settings.guards.retry_backoff.total_seconds()
        for attempt in range(1, retries + 2):
            for hook in hooks:
                await hook.before_attempt(attempt)
            self._audit.record(AuditEvent.ACTION_STARTED, attempt=attempt, **fields)
            try:
                await self._audit.sync()  # the record of a side effect lands before it starts
            except AuditError as exc:
                await _nothing_sent(hooks)
                raise StepFailed(Reason.TEMPORARY_FAILURE, f"audit log unavailable: {exc}") from None
            for hook in hooks:
                await hook.sending()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(step.timeout):
                    result = await action.execute(step.ctx, step.params, step.plan)
            except TimeoutError:
                self._failed(step, attempt, started, Reason.TIMEOUT, f"no answer within {step.timeout}s")
                # a timed-out change may have happened: never repeat a destructive one
                if step.plan.destructive or attempt > retries:
                    raise StepFailed(Reason.TIMEOUT, f"{action.name} timed out") from None
            except TemporaryError as exc:
                self._failed(step, attempt, started, Reason.TEMPORARY_FAILURE, str(exc))
                if step.plan.destructive and not (exc.nothing_sent or action.execute_is_idempotent):
                    raise StepFailed(Reason.TEMPORARY_FAILURE,
                                     f"{action.name}: {exc}; not repeated: the change may have happened "
                                     "(see the target before acting by hand)") from None
                if exc.nothing_sent:
                    await _nothing_sent(hooks)
                if attempt > retries:
                    raise StepFailed(Reason.TEMPORARY_FAILURE,
                                     f"{action.name}: gave up after {attempt} attempts: {exc}") from None
                delay = exc.retry_after if exc.retry_after is not None else backoff * 2 ** (attempt - 1)
                with contextlib.suppress(AuditError):  # what failed is on disk before the wait
                    await self._audit.sync()
                await self._clock.sleep(delay)
                continue
            except PermanentError as exc:
                self._failed(step, attempt, started, Reason.PERMANENT_FAILURE, str(exc))
                raise StepFailed(Reason.PERMANENT_FAILURE, f"{action.name}: {exc}") from None
            except Exception as exc:  # a bug, or a library failing in a way no action expected
                _log.exception("action.crashed", **fields)
                detail = crash_detail(exc)
                self._failed(step, attempt, started, Reason.CRASHED, detail)
                # the side effect may have happened: never repeated
                raise StepFailed(Reason.CRASHED, f"{action.name}: {detail}; not repeated "
                                 "(see the target before acting by hand)") from None
            else:
                self._report.attempt_succeeded(fields, action=action.name, attempt=attempt,
                                               seconds=time.perf_counter() - started, result=result)
                return result
            await self._clock.sleep(backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, step: PreparedStep, attempt: int, started: float, reason: Reason, detail: str) -> None:
        self._report.attempt_failed(step.fields(), action=step.action.name, attempt=attempt,
                                    seconds=time.perf_counter() - started, reason=reason, detail=detail)


async def _nothing_sent(hooks: Sequence[AttemptHooks]) -> None:
    for hook in hooks:
        await hook.nothing_sent()


def _parse(action: Action[Any], raw: Any) -> Any:
    try:
        return action.parse_params(raw)
    except InvalidParams as exc:
        raise StepFailed(Reason.INVALID_PARAMS, str(exc)) from None


def _check_allowed(action: Action[Any], ctx: ActionContext, params: Any) -> None:
    try:
        action.check_allowed(ctx, params)
    except TargetNotAllowed as exc:
        raise StepFailed(Reason.TARGET_NOT_ALLOWED, str(exc)) from None
    except PermanentError as exc:
        raise StepFailed(Reason.INVALID_PARAMS, str(exc)) from None


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


async def _plan(action: Action[Any], params: Any, ctx: ActionContext, *, limit: float) -> Plan:
    try:  # the timer only armed if the plan waits on something (most only describe)
        return await within(action.plan(ctx, params), limit)
    except TimeoutError:
        raise StepFailed(Reason.TIMEOUT, f"{action.name}: plan took over {limit}s") from None
    except RemediationError as exc:
        raise StepFailed(Reason.PLAN_FAILED, f"{action.name}: {exc}") from None
    except Exception as exc:  # a bug, or a library failing in a way the action did not expect
        _log.exception("action.plan_crashed", action=action.name, decision=ctx.decision_id, rule=ctx.rule)
        raise StepFailed(Reason.CRASHED, f"{action.name}: plan: {crash_detail(exc)}") from None


def crash_detail(exc: BaseException) -> str:
    """What an unexpected exception says, for the audit record (the traceback is logged)."""
    return f"internal error ({exc.__class__.__name__}: {str(exc)[:300]}); see the logs"
