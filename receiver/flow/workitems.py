"""Work items: decisions and approved plans as JSON data, so they outlive a process.

Intake (``receiver.flow.intake``) and approvals (``receiver.flow.guards.approvals``) write them
through the state store's work queue; the feeder (``receiver.flow.feeder``) reads them back
for the workers. A decision names its rule; if a reload removed the rule meanwhile, the
decision cannot run and says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from receiver.decisions import Decision
from receiver.store.values import WorkItem
from rules.alert import Alert
from rules.engine import RuleIndex
from rules.priority import Priority

DECISION, APPROVED = "decision", "approved"


def alert_to_data(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint, "status": alert.status, "labels": dict(alert.labels),
        "annotations": dict(alert.annotations), "starts_at": alert.starts_at.isoformat(),
        "starts_at_raw": alert.starts_at_raw,
        "ends_at": alert.ends_at.isoformat() if alert.ends_at is not None else None,
        "generator_url": alert.generator_url,
    }


def alert_from_data(data: dict[str, Any]) -> Alert:
    ends = data["ends_at"]
    return Alert(
        fingerprint=data["fingerprint"], status=data["status"], labels=data["labels"],
        annotations=data["annotations"], starts_at=datetime.fromisoformat(data["starts_at"]),
        starts_at_raw=data["starts_at_raw"], ends_at=datetime.fromisoformat(ends) if ends else None,
        generator_url=data["generator_url"],
    )


def decision_item(d: Decision) -> WorkItem:
    payload = {
        "kind": DECISION, "rule": d.rule.name, "alert": alert_to_data(d.alert),
        "priority": d.priority.value, "response_target": d.response_target.total_seconds(),
        "dry_run": d.dry_run,
    }
    if d.rung:  # a ladder's later rung (``receiver.flow.verify``)
        payload["rung"] = d.rung
    return WorkItem(id=d.id, dedup_key=d.dedup_key, payload=payload)


def approved_item(approval_id: str, decision_id: str) -> WorkItem:
    return WorkItem(id=f"{decision_id}:{approval_id}",
                    payload={"kind": APPROVED, "approval": approval_id, "decision": decision_id})


def decision_from_item(item: WorkItem, index: RuleIndex) -> Decision | str:
    """The decision an item carries, or the name of its rule when no loaded rule has it."""
    p = item.payload
    rule = index.rule(p["rule"])
    if rule is None:
        return str(p["rule"])
    return Decision(id=item.id, dedup_key=item.dedup_key or "", rule=rule, alert=alert_from_data(p["alert"]),
                    priority=Priority(p["priority"]), response_target=timedelta(seconds=p["response_target"]),
                    dry_run=bool(p["dry_run"]), rung=int(p.get("rung", 0)))
