"""Cooldown (per rule and subject), rate limit (per rule) and blast radius (global).

:class:`Budgets` is a stage of ``receiver.flow.guards.pipeline``: peeked before an approval
is requested, spent at once (all three, atomically in the state store) once the target
lock is held. The decision pays, not each step: its budgets are keyed by the decision, so
its second step on one subject is not held back by its first, and the rate limit and the
blast radius count decisions; ``receiver.flow.workers`` pauses automation when the blast
radius stops one. The subject is what the action acts on (``Action.subject``), so two
rules never share a cooldown and one rule's cooldown on one Deployment does not hold back
another.
"""

from __future__ import annotations

from receiver.decisions import Reason
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import NOTHING, Hold, StepRun
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import Budget, Verdict
from rules.model import Rule

_BLOCKS = {
    Verdict.COOLDOWN: (Guard.COOLDOWN, Reason.COOLDOWN),
    Verdict.RATE_LIMIT: (Guard.RATE_LIMIT, Reason.RATE_LIMITED),
    Verdict.BLAST_RADIUS: (Guard.BLAST_RADIUS, Reason.BLAST_RADIUS),
}


def budget_for(settings: Settings, rule: Rule, subject: str, member: str, *, rung: int = 0) -> Budget:
    """The budgets one execution of ``rule`` (its ladder's ``rung``) on ``subject`` spends.

    Each rung has its own cooldown: climbing from a restart to a scale-up of the same
    Deployment is not held back by the restart; the rule's limit and the blast radius are shared.
    """
    cooldown = rule.cooldown if rule.cooldown is not None else settings.guards.default_cooldown
    blast = settings.guards.blast_radius
    return Budget(
        member=member,
        cooldown_key=f"{rule.name}\x1f{subject}" if not rung else f"{rule.name}#{rung}\x1f{subject}",
        cooldown=cooldown.total_seconds(),
        rate_key=rule.name if rule.limit is not None else None,
        rate_max=rule.limit.max if rule.limit is not None else 0,
        rate_window=rule.limit.per.total_seconds() if rule.limit is not None else 0.0,
        blast_max=blast.max if blast is not None else None,
        blast_window=blast.per.total_seconds() if blast is not None else 0.0,
    )


def _describe(verdict: Verdict, budget: Budget, rule: Rule, retry_after: float | None) -> str:
    wait = f"; free again in {retry_after:.0f}s" if retry_after is not None else ""
    if verdict is Verdict.COOLDOWN:
        return f"rule {rule.name} acted on this subject less than {budget.cooldown:.0f}s ago{wait}"
    if verdict is Verdict.RATE_LIMIT:
        return f"rule {rule.name} reached its limit of {budget.rate_max} per {budget.rate_window:.0f}s{wait}"
    return (f"the blast radius of {budget.blast_max} actions per {budget.blast_window:.0f}s is reached; "
            "automation pauses until an admin resumes it")


async def check_budget(store: StateStore, budget: Budget, rule: Rule, *, spend: bool) -> None:
    """Raise :class:`Blocked` with the first spent budget; when ``spend``, spend them all."""
    admission = await store.admit(budget, spend=spend)
    if admission.verdict is not Verdict.OK:
        guard, reason = _BLOCKS[admission.verdict]
        raise Blocked(guard, reason, _describe(admission.verdict, budget, rule, admission.retry_after),
                      retry_after=admission.retry_after)


class Budgets:
    """The stage: cooldown, rate limit and blast radius of one action step."""

    def __init__(self, settings: Settings, *, store: StateStore) -> None:
        self._settings = settings
        self._store = store

    def _budget(self, run: StepRun) -> Budget:
        return budget_for(self._settings, run.rule, run.step.subject, run.decision, rung=run.rung)

    async def peek(self, run: StepRun) -> None:
        await check_budget(self._store, self._budget(run), run.rule, spend=False)

    async def enter(self, run: StepRun) -> Hold:
        await check_budget(self._store, self._budget(run), run.rule, spend=True)
        return NOTHING
