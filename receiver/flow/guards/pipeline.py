"""The guard pipeline: the order in which the guards meet a decision and each of its steps, declared once.

Built by ``receiver.runtime``; run by ``receiver.flow.decide``. As Alertmanager declares its
notification stages, each order is a list of stages run one after the other, and the first
that says no (:class:`receiver.flow.guards.Blocked`) ends the decision there. A new guard is
a module of this package (implementing the kinds of stage in ``receiver.flow.guards.stages``)
and a line in :class:`Pipeline`'s lists.

For a live decision (a dry run plans and stops before ``admission``, spending nothing):
``opening`` before its plan, ``admission`` once planned (its action steps peeked without
spending anything, so no budget is used up while a human decides), then each action step
through ``step``: the execute-once marker before the lock (``claimed``; ``sending`` just
before each request, given back while a retry that sent nothing waits, ``done`` with the
outcome; a marker left ``sending`` by a run that died is resolved there, by reading the
target back or asking a human: ``receiver.flow.guards.once``), budgets spent only once the
lock is held (a locked or broken target uses up no cooldown), and the marker and the lock
given back when anything stops the step before a request goes out. A stage that finds the
step's outcome known already settles it (``Settled``): it is not executed. An approved
plan meets ``approved``, then each of its steps ``step``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from receiver.audit import AuditLog
from receiver.clock import Clock
from receiver.decisions import Reason
from receiver.flow.attempts import AttemptHooks
from receiver.flow.escalation import Escalations
from receiver.flow.guards.approvals import Approvals
from receiver.flow.guards.budget import Budgets
from receiver.flow.guards.circuit import Breakers
from receiver.flow.guards.dryrun import DryRunNow
from receiver.flow.guards.killswitch import KillSwitch
from receiver.flow.guards.lock import TargetLock
from receiver.flow.guards.maintenance import Window
from receiver.flow.guards.once import ExecuteOnce
from receiver.flow.guards.stages import (
    ApprovedRun,
    ApprovedStage,
    DecisionRun,
    DecisionStage,
    Hold,
    Peek,
    Settled,
    StepRun,
    StepStage,
)
from receiver.flow.policies import Policies
from receiver.flow.steps import PreparedStep, StepFailed
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from remediations.base import Result

Execute = Callable[[PreparedStep, Sequence[AttemptHooks]], Awaitable[Result]]


class Pipeline:
    """The guards of one process, in their order."""

    def __init__(self, settings: Settings, *, store: StateStore, audit: AuditLog, clock: Clock,
                 killswitch: KillSwitch, breakers: Breakers, approvals: Approvals, policies: Policies,
                 escalations: Escalations, owner: str) -> None:
        window = Window(settings, clock=clock)
        budgets = Budgets(settings, store=store)
        once = ExecuteOnce(settings, store=store, audit=audit, clock=clock, escalations=escalations,
                           owner=owner)
        self.opening: tuple[DecisionStage, ...] = (  # a live decision, before its plan
            window,                      # maintenance: a window holds the alert
            _P1Timer(policies),          # not a guard: a P1 arms its timer, so it escalates even while paused
            killswitch,                  # kill switch: automation paused
        )
        self.peek: tuple[Peek, ...] = (  # each action step of a planned live decision: spend nothing
            budgets,                     # cooldown, rate limit, blast radius
            breakers,                    # circuit breaker of the step's target
        )
        self.admission: tuple[DecisionStage, ...] = (  # a live decision, planned
            _P2Count(policies),          # not a guard: a P2 is counted per rule and subject
            _EachAction(self.peek),
            approvals,                   # approval: requested and announced; the decision waits
        )
        self.approved: tuple[ApprovedStage, ...] = (  # an approved plan, before its steps run
            approvals,                   # approval: still approved
            _RULE_LOADED,                # not a guard: the rule is still loaded
            DryRunNow(settings),         # dry-run: the service or the rule is in dry-run now
            window,                      # maintenance
        )
        self.step: tuple[StepStage, ...] = (  # each action step, just before it executes
            killswitch,                  # kill switch (again before every retry)
            breakers,                    # circuit breaker (told the outcome)
            once,                        # execute-once marker
            TargetLock(settings, store=store, owner=owner,  # target lock, fenced before every attempt
                       taken_from=once.taken_from),
            budgets,                     # cooldown, rate limit, blast radius: spent
        )

    async def open(self, run: DecisionRun) -> None:
        for stage in self.opening:
            await stage.check_decision(run)

    async def admit(self, run: DecisionRun) -> None:
        for stage in self.admission:
            await stage.check_decision(run)

    async def reopen(self, run: ApprovedRun) -> None:
        for stage in self.approved:
            await stage.check_approved(run)

    async def run_step(self, run: StepRun, execute: Execute) -> Result:
        """Let ``run``'s step through every step stage, execute it, and tell each stage the outcome.

        What the stages hold is given back, in their order, when a later one stops the step
        before it executes; after it executed, each hears the outcome, in their order.
        """
        holds: list[Hold] = []
        try:
            for stage in self.step:
                holds.append(await stage.enter(run))  # noqa: PERF401 - one at a time, in order
        except Settled as settled:  # its outcome is known: nothing to execute
            for give_back in _hooks(holds, "give_back"):
                await give_back()
            return settled.result
        except BaseException:
            for give_back in _hooks(holds, "give_back"):
                await give_back()
            raise
        outcome: Result | StepFailed | None = None
        try:
            outcome = await execute(run.step, holds)
            return outcome
        except StepFailed as failed:
            outcome = failed
            raise
        finally:
            await _finish(_hooks(holds, "finish"), outcome)


def _hooks(holds: list[Hold], name: str) -> list[Any]:
    """The holds' ``name`` hooks that do something (not :class:`Hold`'s own, which do nothing)."""
    return [getattr(hold, name) for hold in holds if getattr(type(hold), name) is not getattr(Hold, name)]


async def _finish(finishes: list[Any], outcome: Result | StepFailed | None) -> None:
    """Tell every hold the outcome, even when one of them fails (the first failure goes on)."""
    error: BaseException | None = None
    for finish in finishes:
        try:
            await finish(outcome)
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error


class _EachAction:
    """Runs the peek stages over each action step of a planned decision, step by step."""

    def __init__(self, stages: tuple[Peek, ...]) -> None:
        self._stages = stages

    async def check_decision(self, run: DecisionRun) -> None:
        d = run.d
        for step in run.actions:
            at = StepRun(decision=d.id, rule=d.rule, rung=d.rung, step=step)
            for stage in self._stages:
                await stage.peek(at)


class _P1Timer:
    def __init__(self, policies: Policies) -> None:
        self._policies = policies

    async def check_decision(self, run: DecisionRun) -> None:
        await self._policies.started(run.d)


class _P2Count:
    def __init__(self, policies: Policies) -> None:
        self._policies = policies

    async def check_decision(self, run: DecisionRun) -> None:
        await self._policies.planned(run.d, [s.subject for s in run.actions])


class _RuleLoaded:
    async def check_approved(self, run: ApprovedRun) -> None:
        if run.rule is None:
            raise StepFailed(Reason.RULE_GONE, f"rule {run.approval.rule!r} is no longer loaded; "
                             f"approval {run.approval.id} was not run")


_RULE_LOADED = _RuleLoaded()
