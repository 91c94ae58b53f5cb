"""The one JSON form of what the flow keeps in the state store, and the one way back.

What crosses the store as data is a typed value here, each with one way to become data
and one way back: decisions (:func:`decision_item` / :func:`read_work`) and approved
plans (:class:`ApprovedWork`) as work items (a deferred one carrying its :class:`Deferral`),
an approval's request (:class:`ApprovalRequest`:
its :class:`SavedStep` plans, :class:`Diagnostic` results and alert), and the payloads of
timers (:class:`VerifyWatch`, :class:`P1Watch`, :class:`SlackReply`). Nothing else builds or
reads those dicts. Written by ``receiver.flow.enqueue``, ``receiver.flow.guards.approvals``,
``receiver.flow.verify``, ``receiver.flow.policies`` and ``receiver.http.slackreply``; read by
``receiver.flow.workers``, ``receiver.flow.decide``, ``receiver.flow.notices``, the console
(``receiver.http.console.pages``) and the same. A decision names its rule: when no loaded rule has
that name (a reload removed it) reading it back raises :class:`RuleGone`. Fields added
later have defaults, so what an older version stored still reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from receiver.decisions import Decision
from receiver.errors import ReceiverError
from receiver.store.values import Approval, WorkItem
from remediations.base import Plan, Result
from rules.alert import Alert
from rules.engine import RuleIndex
from rules.model import Rule

DECISION, APPROVED = "decision", "approved"


class RuleGone(ReceiverError):
    """A stored decision names a rule that is no longer loaded."""

    def __init__(self, rule: str) -> None:
        super().__init__(f"rule {rule!r} is no longer loaded")
        self.rule = rule


def _alert_data(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint, "status": alert.status, "labels": dict(alert.labels),
        "annotations": dict(alert.annotations), "starts_at": alert.starts_at.isoformat(),
        "starts_at_raw": alert.starts_at_raw,
        "ends_at": alert.ends_at.isoformat() if alert.ends_at is not None else None,
        "generator_url": alert.generator_url,
    }


def _alert(data: Mapping[str, Any]) -> Alert:
    ends = data["ends_at"]
    return Alert(
        fingerprint=data["fingerprint"], status=data["status"], labels=data["labels"],
        annotations=data["annotations"], starts_at=datetime.fromisoformat(data["starts_at"]),
        starts_at_raw=data["starts_at_raw"], ends_at=datetime.fromisoformat(ends) if ends else None,
        generator_url=data["generator_url"],
    )


def _rule(index: RuleIndex, name: str) -> Rule:
    rule = index.rule(name)
    if rule is None:
        raise RuleGone(name)
    return rule


# --- work items ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApprovedWork:
    """An approved plan to run: the approval that holds it, the decision it answers."""

    approval: str
    decision: str

    def item(self) -> WorkItem:
        return WorkItem(id=f"{self.decision}:{self.approval}",
                        payload={"kind": APPROVED, "approval": self.approval, "decision": self.decision})


def decision_item(d: Decision) -> WorkItem:
    """``d`` as the work item intake (or a ladder's climb) queues."""
    payload = {
        "kind": DECISION, "rule": d.rule.name, "alert": _alert_data(d.alert),
        "priority": d.priority, "response_target": d.response_target.total_seconds(),
        "dry_run": d.dry_run,
    }
    if d.rung:  # a ladder's later rung (``receiver.flow.verify``)
        payload["rung"] = d.rung
    return WorkItem(id=d.id, dedup_key=d.dedup_key, payload=payload)


def read_work(item: WorkItem, index: RuleIndex) -> Decision | ApprovedWork:
    """What a work item carries; :class:`RuleGone` when its decision's rule is not loaded."""
    p = item.payload
    if p.get("kind") == APPROVED:
        return ApprovedWork(approval=str(p["approval"]), decision=str(p.get("decision") or item.id))
    return Decision(id=item.id, dedup_key=item.dedup_key or "", rule=_rule(index, p["rule"]),
                    alert=_alert(p["alert"]), priority=str(p["priority"]),
                    response_target=timedelta(seconds=p["response_target"]), dry_run=bool(p["dry_run"]),
                    rung=int(p.get("rung", 0)))


@dataclass(frozen=True, slots=True)
class Deferral:
    """How long a decision has waited behind a transient guard (``receiver.flow.deferral``):
    carried in its work item's payload while it is deferred and when it comes back."""

    attempts: int
    since: float
    guard: str
    reason: str

    def as_data(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "since": self.since, "guard": self.guard, "reason": self.reason}

    @classmethod
    def of(cls, item: WorkItem) -> Deferral | None:
        """The deferral ``item`` carries; None when it was never deferred."""
        data = item.payload.get("deferred")
        if not isinstance(data, Mapping):
            return None
        return cls(attempts=int(data["attempts"]), since=float(data["since"]), guard=str(data["guard"]),
                   reason=str(data["reason"]))

    def onto(self, item: WorkItem) -> WorkItem:
        """``item`` carrying this deferral (same id and dedup key)."""
        return WorkItem(id=item.id, dedup_key=item.dedup_key,
                        payload={**item.payload, "deferred": self.as_data()})


# --- an approval's request -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SavedStep:
    """A planned action step as an approval keeps it, to run as planned once approved."""

    number: int
    action: str
    target: str | None
    params: Any
    plan: Plan
    subject: str
    timeout: float
    priority: str | None = None

    def as_data(self) -> dict[str, Any]:
        return {"number": self.number, "action": self.action, "target": self.target, "params": self.params,
                "plan": self.plan.as_dict(), "subject": self.subject, "timeout": self.timeout,
                "priority": self.priority}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SavedStep:
        return cls(number=data["number"], action=data["action"], target=data["target"], params=data["params"],
                   plan=Plan.from_dict(data["plan"]), subject=data["subject"], timeout=data["timeout"],
                   priority=data.get("priority"))


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """What a diagnostic step found, carried with the approval request for the approver."""

    step: int
    action: str
    result: Result

    def as_data(self) -> dict[str, Any]:
        return {"step": self.step, "action": self.action, "result": self.result.as_dict()}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Diagnostic:
        result = data["result"]
        return cls(step=data["step"], action=data["action"],
                   result=Result(summary=result["summary"], details=dict(result["details"])))


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """What an approval keeps (its ``payload``): the decision's action steps as planned, the
    diagnostics, and what rebuilds the decision once approved. The data also carries the
    alert's name and labels, for people reading the approval (``GET /api/v1/approvals``)."""

    steps: tuple[SavedStep, ...]
    diagnostics: tuple[Diagnostic, ...]
    alert: Alert
    priority: str
    dry_run: bool
    rung: int
    response_target: timedelta
    urgent: bool = False
    """At the first of the configured levels: its notice is critical."""

    @classmethod
    def of(cls, d: Decision, steps: tuple[SavedStep, ...], diagnostics: tuple[Diagnostic, ...], *,
           urgent: bool = False) -> ApprovalRequest:
        return cls(steps=steps, diagnostics=diagnostics, alert=d.alert, priority=d.priority,
                   dry_run=d.dry_run, rung=d.rung, response_target=d.response_target, urgent=urgent)

    def as_data(self) -> dict[str, Any]:
        return {"steps": [s.as_data() for s in self.steps],
                "diagnostics": [x.as_data() for x in self.diagnostics], "alert": _alert_data(self.alert),
                "priority": self.priority, "alertname": self.alert.name,
                "labels": dict(self.alert.labels), "dry_run": self.dry_run, "rung": self.rung,
                "response_target": self.response_target.total_seconds(), "urgent": self.urgent}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        return cls(steps=tuple(SavedStep.from_data(s) for s in data["steps"]),
                   diagnostics=tuple(Diagnostic.from_data(x) for x in data["diagnostics"]),
                   alert=_alert(data["alert"]), priority=str(data["priority"]),
                   dry_run=bool(data["dry_run"]), rung=int(data.get("rung", 0)),
                   response_target=timedelta(seconds=float(data.get("response_target", 0.0))),
                   urgent=bool(data.get("urgent", data["priority"] == "P1")))

    @classmethod
    def of_approval(cls, approval: Approval) -> ApprovalRequest:
        """The request ``approval`` keeps (for its notice, the console, the run once approved)."""
        return cls.from_data(approval.payload)

    def plan_lines(self) -> list[str]:
        """The plan's exact steps, in order, across the action steps."""
        return [line for step in self.steps for line in step.plan.steps]

    def decision(self, approval: Approval, rule: Rule) -> Decision:
        """The decision that asked for ``approval``, with its ``rule`` as loaded now."""
        return Decision(id=approval.decision, dedup_key="", rule=rule, alert=self.alert,
                        priority=self.priority, response_target=self.response_target, dry_run=self.dry_run,
                        rung=self.rung)


# --- timer payloads --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyWatch:
    """A verify watch's payload (and the failed watch's kept after it): did the alert resolve
    within ``window`` seconds of the rung's actions (``started_at``)?"""

    decision: str
    rule: str
    rung: int
    alert: Alert
    priority: str
    response_target: float
    started_at: float
    window: float
    otherwise: str

    def as_data(self) -> dict[str, Any]:
        return {"decision": self.decision, "rule": self.rule, "rung": self.rung,
                "alert": _alert_data(self.alert), "priority": self.priority,
                "response_target": self.response_target,
                "started_at": self.started_at, "window": self.window, "otherwise": self.otherwise}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> VerifyWatch:
        return cls(decision=data["decision"], rule=data["rule"], rung=data["rung"],
                   alert=_alert(data["alert"]), priority=str(data["priority"]),
                   response_target=data["response_target"],
                   started_at=data["started_at"], window=data["window"], otherwise=data["otherwise"])


@dataclass(frozen=True, slots=True)
class P1Watch:
    """A P1 timer's payload: escalate when the alert still fires ``after`` seconds past ``first_at``."""

    rule: str
    decision: str
    alert: Alert
    priority: str
    response_target: float
    first_at: float
    after: float

    def as_data(self) -> dict[str, Any]:
        return {"rule": self.rule, "decision": self.decision, "alert": _alert_data(self.alert),
                "priority": self.priority, "response_target": self.response_target,
                "first_at": self.first_at, "after": self.after}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> P1Watch:
        return cls(rule=data["rule"], decision=data["decision"], alert=_alert(data["alert"]),
                   priority=str(data["priority"]), response_target=data["response_target"],
                   first_at=data["first_at"], after=data["after"])


@dataclass(frozen=True, slots=True)
class SlackReply:
    """A ``slack_reply`` timer's payload: the Slack message of ``approval`` still owes the run's
    result, posted to ``response_url`` after the ``decided`` line (``receiver.http.slackreply``)."""

    approval: str
    response_url: str
    decided: str

    def as_data(self) -> dict[str, Any]:
        return {"approval": self.approval, "response_url": self.response_url, "decided": self.decided}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SlackReply:
        return cls(approval=str(data["approval"]), response_url=str(data["response_url"]),
                   decided=str(data["decided"]))
