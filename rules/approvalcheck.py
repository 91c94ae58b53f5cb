"""No destructive step whose approval an alert's label decides.

Called by ``rules.loader`` for every rule (so ``rules lint``, ``config check``, ``serve``
and every reload refuse it). ``approval: {required_for: [P1, P2]}`` asks a human at those
priorities only; a rule without a fixed ``priority:`` takes its priority from the alert's
``severity`` label (``rules.priority.classify``), so whoever writes that label (any
Prometheus rule, any sender of alerts) would decide whether a destructive step runs
unasked: ``severity=info`` and the DELETE runs. Such a rung is refused unless it lists
every level, naming how to fix it. Steps that are not destructive (judged with their
params when they have no template: ``http.request`` with GET is not) and actions that
always need approval (``redis.flushdb``) are not concerned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rules.catalogue import ActionCatalogue
from rules.model import ApprovalByPriority, Rule
from rules.priority import DEFAULT_LEVELS, PriorityPolicy
from rules.yamldoc import Loc


def label_decided_approvals(rule: Rule | None, catalogue: ActionCatalogue, policy: PriorityPolicy | None,
                            written_in: Sequence[str] | None) -> list[tuple[Loc, str]]:
    """Each rung of ``rule`` whose destructive steps an alert's label could run unasked, with why.

    The levels are the service's (``policy``; ``required_for`` is already mapped onto them),
    else the file's (``written_in``), else the default P1–P4.
    """
    if rule is None or rule.priority is not None:
        return []
    label = policy.label if policy is not None else "severity"
    every = list(policy.levels if policy is not None else written_in or DEFAULT_LEVELS)

    def destructive(name: str, params: Mapping[str, Any]) -> bool:
        info = catalogue.info(name)
        return info is not None and info.needs_approval_by_nature(params)

    out: list[tuple[Loc, str]] = []
    for k, step in enumerate(rule.steps):
        own = rule.ladder[k].approval if rule.ladder else None
        approval = own if own is not None else rule.approval
        if not isinstance(approval, ApprovalByPriority):
            continue
        unasked = [lv for lv in every if lv not in approval.required_for]
        names = sorted({s.action for s in step.actions if destructive(s.action, s.params)})
        if not unasked or not names:
            continue
        at: Loc = ("ladder", k, "approval") if own is not None else ("approval",)
        listed = ", ".join(approval.required_for)
        out.append((at, (
            f"approval: {{required_for: [{listed}]}} lets the alert's {label!r} label decide whether "
            f"destructive {', '.join(names)} runs: without a fixed priority, an alert whose {label} "
            f"places it at {' or '.join(unasked)} runs it with no human asked. Fix the rule's "
            f"priority (priority: {every[0]}), or say approval: required (or list every level: "
            f"[{', '.join(every)}])")))
    return out
