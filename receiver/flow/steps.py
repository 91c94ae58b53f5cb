"""The runner: executes one planned step behind its last guards, with retries.

Called by ``receiver.flow.workers`` for diagnostics (read-only: no lock) and for action steps
(``run_guarded``: circuit breaker, target lock with fencing, execute-once marker, then
execute). ``action.started`` is made durable before ``execute()`` runs under its timeout;
temporary failures are retried with backoff on the injected clock, but a destructive
action whose outcome is unknown (a timeout, a 5xx after the request went out) is never
repeated unless it re-reads state first; the final outcome feeds the circuit breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Reason
from receiver.errors import StateError
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.budget import check_budget
from receiver.flow.guards.circuit import Breakers
from receiver.flow.guards.killswitch import KillSwitch
from receiver.flow.guards.lock import Fence, acquire_target
from receiver.metrics import Metrics
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import Budget
from remediations.base import Action, ActionContext, PermanentError, Plan, Result, TemporaryError
from rules.model import Rule

_log = structlog.get_logger("remediator.runner")


class StepFailed(Exception):
    """Ends a decision as failed; carries the audit reason (internal to the receiver)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


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

    def common(self, decision: str) -> dict[str, Any]:
        """The fields every audit record of this step carries."""
        return {"decision": decision, "rule": self.ctx.rule, "fingerprint": self.ctx.alert.fingerprint,
                "step": self.number, "kind": self.kind, "action": self.action.name,
                "target": self.ctx.target_name, "priority": self.priority, "dry_run": self.ctx.dry_run}

    def as_data(self) -> dict[str, Any]:
        """What an approval stores to run this step once approved."""
        return {"number": self.number, "action": self.action.name, "target": self.ctx.target_name,
                "params": self.raw_params, "plan": self.plan.as_dict(), "subject": self.subject,
                "timeout": self.timeout, "priority": self.priority}


class Runner:
    """Executes steps; one per process, shared by the workers."""

    def __init__(self, settings: Settings, *, store: StateStore, audit: AuditLog, metrics: Metrics,
                 clock: Clock, breakers: Breakers, killswitch: KillSwitch, owner: str) -> None:
        self._settings = settings
        self._store = store
        self._audit = audit
        self._metrics = metrics
        self._clock = clock
        self._breakers = breakers
        self._killswitch = killswitch
        self._owner = owner

    async def run_guarded(self, decision: str, step: PreparedStep, *, rule: Rule, budget: Budget) -> Result:
        """Kill switch → circuit breaker → execute-once marker → target lock → spend the
        budgets → execute; the outcome feeds the breaker.

        The marker comes before the lock so a step whose holder crashed mid-action is
        recognised as started (not merely locked). It is given back, and the lock released,
        when anything stops the step before ``execute()`` starts; budgets are spent only
        once the lock is held, so a locked or broken target uses up no cooldown.
        """
        await self._killswitch.check()
        target = step.ctx.target_name
        if target is not None:
            await self._breakers.check(target)
        marker = f"exec\x1f{decision}\x1f{step.number}"
        (first,) = await self._store.claim([marker], ttl=self._settings.guards.dedup_ttl.total_seconds())
        if not first:
            self._audit.record(AuditEvent.ACTION_SKIPPED, reason=Reason.ALREADY_STARTED,
                               **step.common(decision))
            raise Blocked(Guard.EXECUTE_ONCE, Reason.ALREADY_STARTED,
                          f"step {step.number} ({step.action.name}) was started before, here or on "
                          "another replica; its outcome is in the audit log, so it is not run again")
        fence: Fence | None = None
        try:
            fence = await acquire_target(self._store, step.subject, owner=self._owner,
                                         ttl=self._lock_ttl(step))
            await check_budget(self._store, budget, rule, spend=True)  # blast radius: the executor pauses
        except BaseException:
            with contextlib.suppress(StateError):
                await self._store.release([marker])
            if fence is not None:
                await fence.release()
            raise
        try:
            try:
                result = await self.execute(step, fence=fence)
            except StepFailed as failed:
                if target is not None:
                    await self._breakers.record(target, ok=False, decision=decision, detail=failed.detail)
                raise
            if target is not None:
                await self._breakers.record(target, ok=True, decision=decision, detail="")
            return result
        finally:
            await fence.release()

    def _lock_ttl(self, step: PreparedStep) -> float:
        """``guards.lock_ttl``, or longer when every attempt and backoff could take longer:
        a lock must not expire under a holder that is still within its limits."""
        guards = self._settings.guards
        backoff = guards.retry_backoff.total_seconds() * (2 ** guards.retries - 1)
        worst = step.timeout * (guards.retries + 1) + backoff + 60.0
        return float(max(guards.lock_ttl.total_seconds(), worst))

    async def execute(self, step: PreparedStep, *, fence: Fence | None) -> Result:
        """Execute with retries; :class:`StepFailed` when it finally fails."""
        action, common = step.action, step.common(step.ctx.decision_id)
        retries = self._settings.guards.retries
        backoff = self._settings.guards.retry_backoff.total_seconds()
        for attempt in range(1, retries + 2):
            if fence is not None:
                if attempt > 1:  # a pause during the backoff stops the retries too
                    await self._killswitch.check()
                await fence.check()
            self._audit.record(AuditEvent.ACTION_STARTED, attempt=attempt, **common)
            try:
                await self._audit.sync()  # the record of a side effect lands before it starts
            except AuditError as exc:
                raise StepFailed(Reason.TEMPORARY_FAILURE, f"audit log unavailable: {exc}") from None
            started = time.perf_counter()
            try:
                async with asyncio.timeout(step.timeout):
                    result = await action.execute(step.ctx, step.params, step.plan)
            except TimeoutError:
                self._failed(action, started, Reason.TIMEOUT, f"no answer within {step.timeout}s",
                             attempt=attempt, common=common)
                # a timed-out change may have happened: never repeat a destructive one
                if step.plan.destructive or attempt > retries:
                    raise StepFailed(Reason.TIMEOUT, f"{action.name} timed out") from None
            except TemporaryError as exc:
                self._failed(action, started, Reason.TEMPORARY_FAILURE, str(exc), attempt=attempt,
                             common=common)
                if step.plan.destructive and not (exc.nothing_sent or action.execute_is_idempotent):
                    raise StepFailed(Reason.TEMPORARY_FAILURE,
                                     f"{action.name}: {exc}; not repeated: the change may have happened "
                                     "(see the target before acting by hand)") from None
                if attempt > retries:
                    raise StepFailed(Reason.TEMPORARY_FAILURE,
                                     f"{action.name}: gave up after {attempt} attempts: {exc}") from None
                delay = exc.retry_after if exc.retry_after is not None else backoff * 2 ** (attempt - 1)
                await self._clock.sleep(delay)
                continue
            except PermanentError as exc:
                self._failed(action, started, Reason.PERMANENT_FAILURE, str(exc), attempt=attempt,
                             common=common)
                raise StepFailed(Reason.PERMANENT_FAILURE, f"{action.name}: {exc}") from None
            else:
                self._metrics.action_duration.labels(action.name, "succeeded").observe(
                    time.perf_counter() - started)
                self._audit.record(AuditEvent.ACTION_SUCCEEDED, attempt=attempt, result=result.as_dict(),
                                   **common)
                return result
            await self._clock.sleep(backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, action: Action[Any], started: float, reason: Reason, detail: str, *,
                attempt: int, common: dict[str, Any]) -> None:
        self._metrics.action_duration.labels(action.name, "failed").observe(time.perf_counter() - started)
        self._audit.record(AuditEvent.ACTION_FAILED, attempt=attempt, reason=reason, detail=detail, **common)
        _log.warning("action.failed", action=action.name, attempt=attempt, reason=reason, detail=detail)
