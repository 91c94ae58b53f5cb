"""One decision, from its plan to its approval or its run.

Called by ``receiver.flow.workers`` for each work item: :meth:`Decide.decision` for a
decision (one rung of its rule), :meth:`Decide.approved` for a plan a human approved.
A live decision passes the pipeline's opening guards (``receiver.flow.guards.pipeline``);
then every step of the rung (``diagnose`` first, then ``actions``) is rendered, validated,
allow-listed and planned (``receiver.flow.steps``), the plans audited. In dry-run that is
all. Live, diagnostics run, the admission guards peek at every action step and may ask
for an approval (the decision ends there); otherwise each action step goes through the
pipeline's step guards and executes. An approved plan meets the cheap guards again and
runs as planned. A rung whose actions all succeeded is handed to ``receiver.flow.verify``.
Each returns how the decision ended (``receiver.flow.report.Ending``), or raises how it
stopped early.
"""

from __future__ import annotations

import structlog

from receiver.decisions import Decision, Outcome, Reason
from receiver.flow.codec import ApprovalRequest, ApprovedWork, Diagnostic
from receiver.flow.guards.approvals import Approvals
from receiver.flow.guards.pipeline import Pipeline
from receiver.flow.guards.stages import ApprovedRun, DecisionRun, StepRun
from receiver.flow.reload import RulesCoordinator
from receiver.flow.report import Ending
from receiver.flow.steps import PreparedStep, StepFailed, Steps
from receiver.flow.verify import Verifier

_log = structlog.get_logger("remediator.executor")


class Decide:
    """Carries decisions and approved plans; one per process, shared by the workers."""

    def __init__(self, *, rules: RulesCoordinator, pipeline: Pipeline, steps: Steps, approvals: Approvals,
                 verifier: Verifier) -> None:
        self._rules = rules
        self._pipeline = pipeline
        self._steps = steps
        self._approvals = approvals
        self._verifier = verifier

    async def decision(self, d: Decision) -> Ending:
        """Plan ``d``; live, ask for its approval or run it."""
        if not d.dry_run:
            await self._pipeline.open(DecisionRun(d))
        if d.rung >= len(d.rule.steps):
            raise StepFailed(Reason.RULE_GONE, f"rule {d.rule.name} has no rung {d.rung} any more")
        actions, diagnostics = await self._plan(d)
        if d.dry_run:
            self._verifier.skipped(d)
            return Ending.done(Outcome.PLANNED, Reason.DRY_RUN)
        await self._pipeline.admit(DecisionRun(d, actions, diagnostics))
        await self._run(d, actions)
        await self._verifier.acted(d)
        return Ending.done(Outcome.SUCCEEDED, Reason.SUCCEEDED)

    async def _plan(self, d: Decision) -> tuple[tuple[PreparedStep, ...], tuple[Diagnostic, ...]]:
        """Every step of ``d``'s rung planned; live, its diagnostics run (read-only)."""
        diagnostics: list[Diagnostic] = []
        actions: list[PreparedStep] = []
        rung = d.rule.steps[d.rung]
        specs = [("diagnose", s) for s in d.rule.diagnose] + [("action", s) for s in rung.actions]
        for number, (kind, spec) in enumerate(specs, start=1):
            step = await self._steps.plan(d, number, kind, spec)
            if kind == "action":
                actions.append(step)
            elif not d.dry_run:
                result = await self._steps.execute(step)
                diagnostics.append(Diagnostic(step=number, action=spec.action, result=result))
        return tuple(actions), tuple(diagnostics)

    async def approved(self, work: ApprovedWork) -> Ending:
        """Run a plan a human approved, as it was planned."""
        approval = await self._approvals.get(work.approval)
        request = ApprovalRequest.from_data(approval.payload)
        run = ApprovedRun(approval, request, self._rules.index.rule(approval.rule))
        await self._pipeline.reopen(run)
        d = request.decision(approval, run.loaded_rule)
        await self._run(d, [self._steps.restore(d, saved) for saved in request.steps])
        await self._verifier.acted(d)
        _log.info("approval.ran", approval=approval.id, priority=d.priority)
        return Ending.done(Outcome.SUCCEEDED, Reason.APPROVED)

    async def _run(self, d: Decision, steps: tuple[PreparedStep, ...] | list[PreparedStep]) -> None:
        for step in steps:
            await self._pipeline.run_step(StepRun(decision=d.id, rule=d.rule, rung=d.rung, step=step),
                                          self._steps.execute)
