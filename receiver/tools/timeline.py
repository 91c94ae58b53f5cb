"""Incident timelines: one alert's story from the audit log, for a post-mortem or the console.

Called by ``receiver.cli.audit`` (``remediator audit timeline``) and by the console's incident
page (``receiver.http.console.pages``). Built from records read by
``receiver.tools.auditview``; the response target is met, missed or still open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from receiver.audit import AuditEvent
from receiver.tools.auditview import Entry, parse_ts
from rules.durations import format_duration


@dataclass
class Timeline:
    fingerprint: str
    alertname: str
    rows: list[tuple[datetime, str]] = field(default_factory=list)
    fired: datetime | None = None
    resolved: datetime | None = None
    responded: datetime | None = None
    response_by: str = ""
    priority: str | None = None
    target: timedelta | None = None
    last: datetime | None = None


def _hms(delta: timedelta) -> str:
    return format_duration(timedelta(seconds=round(delta.total_seconds()))) if delta else "0s"


def _code(text: Any) -> str:
    return f"`{str(text).replace('`', '')}`"


def _describe(rec: dict[str, Any]) -> str | None:
    """The timeline row for a record, or None for records a post-mortem does not need."""
    event = rec["event"]
    rule = _code(rec["rule"]) if rec.get("rule") else "a rule"
    step = _code(rec.get("action")) + (f" on target {_code(rec['target'])}" if rec.get("target") else "")
    if event == AuditEvent.RULE_MATCHED:
        target = timedelta(seconds=float(rec.get("response_target_seconds") or 0))
        dry = " (dry-run)" if rec.get("dry_run") else ""
        return f"Rule {rule} matched{dry}: priority {rec.get('priority')}, respond within {_hms(target)}"
    if event == AuditEvent.GUARD_BLOCKED:
        if rec.get("outcome") == "awaiting_approval":
            return None  # the approval.requested row says it
        return f"{rule} held by the {rec.get('guard')} guard: {rec.get('detail') or rec.get('reason')}"
    if event == AuditEvent.APPROVAL_REQUESTED:
        plans = "; ".join(s for p in rec.get("plans") or [] for s in p.get("steps", []))
        return f"Approval {_code(rec.get('approval'))} requested for {rule}" + (f": {plans}" if plans else "")
    if event in (AuditEvent.APPROVAL_APPROVED, AuditEvent.APPROVAL_REJECTED):
        verb = "approved" if event == AuditEvent.APPROVAL_APPROVED else "rejected"
        note = f" ({rec['comment']})" if rec.get("comment") else ""
        return f"Approval {_code(rec.get('approval'))} {verb} by {rec.get('actor')}{note}"
    if event in (AuditEvent.APPROVAL_EXPIRED, AuditEvent.APPROVAL_CANCELLED):
        why = f": {rec['comment']}" if rec.get("comment") else ""
        return f"Approval {_code(rec.get('approval'))} {event.split('.')[1]}{why}"
    if event == AuditEvent.ACTION_PLANNED and rec.get("dry_run"):
        steps = "; ".join((rec.get("plan") or {}).get("steps", []))
        return f"Dry-run plan of {step}: {steps}"
    if event == AuditEvent.ACTION_STARTED:
        attempt = f" (attempt {rec['attempt']})" if rec.get("attempt", 1) != 1 else ""
        return f"Action {step} started{attempt}"
    if event == AuditEvent.ACTION_SUCCEEDED:
        return f"Action {step} succeeded: {(rec.get('result') or {}).get('summary', '')}".rstrip(": ")
    if event == AuditEvent.ACTION_FAILED:
        return f"Action {step} failed ({rec.get('reason')}): {rec.get('detail', '')}"
    if event == AuditEvent.DECISION_FAILED:
        return f"{rule} failed ({rec.get('reason')}): {rec.get('detail', '')}"
    return _describe_follow_up(event, rec, rule)


def _seconds(value: Any) -> str:
    return _hms(timedelta(seconds=float(value or 0)))


def _describe_follow_up(event: str, rec: dict[str, Any], rule: str) -> str | None:
    """Rows for what follows a remediation: verification, ladder rungs, escalations."""
    rung = f" (rung {int(rec['rung']) + 1})" if rec.get("rung") else ""
    if event == AuditEvent.VERIFY_WATCHING:
        then = "the next rung" if rec.get("otherwise") == "next" else "escalate"
        within = _seconds(rec.get("resolved_within"))
        return f"Watching for the resolution{rung}: within {within}, else {then}"
    if event == AuditEvent.VERIFY_SUCCEEDED:
        took = _seconds(rec.get("time_to_resolve_seconds"))
        return f"Verified{rung}: resolved {took} after the remediation"
    if event == AuditEvent.VERIFY_RESOLVED_LATE:
        return f"Resolved late{rung}: {_seconds(rec.get('time_to_resolve_seconds'))} after the remediation"
    if event == AuditEvent.VERIFY_FAILED:
        then = "climbing to the next rung" if rec.get("otherwise") == "next" else "escalating"
        return f"Not resolved within {_seconds(rec.get('resolved_within'))}{rung}: {then}"
    if event == AuditEvent.RUNG_STARTED:
        return f"Rung {int(rec.get('rung') or 0) + 1} of {rule} started"
    if event == AuditEvent.ESCALATION_SENT:
        to = ", ".join(rec.get("notifiers") or []) or "nobody configured"
        return f"Escalated ({rec.get('reason')}) to {to}: {rec.get('detail') or ''}".rstrip(": ")
    return None


def build_timelines(entries: Iterable[Entry], fingerprints: Sequence[str] | None = None) -> list[Timeline]:
    """One timeline per alert: of ``fingerprints`` (prefixes), or of every alert received."""
    entries = list(entries)
    decisions: dict[str, str] = {}
    for e in entries:
        rec = e.record
        if rec.get("decision") and rec.get("fingerprint"):
            decisions.setdefault(rec["decision"], rec["fingerprint"])
    timelines: dict[str, Timeline] = {}
    for e in entries:
        rec = e.record
        fp = rec.get("fingerprint") or decisions.get(str(rec.get("decision")))
        if not fp or (fingerprints is not None and not any(fp.startswith(f) for f in fingerprints)):
            continue
        t = timelines.get(fp)
        if t is None:
            t = timelines[fp] = Timeline(fp, str(rec.get("alertname") or ""))
        _add(t, e)
    return list(timelines.values())


def _add(t: Timeline, e: Entry) -> None:
    rec, at = e.record, e.at
    event = rec["event"]
    t.last = at
    t.alertname = t.alertname or str(rec.get("alertname") or "")
    if event == AuditEvent.ALERT_RECEIVED:
        starts = parse_ts(rec["startsAt"]) if rec.get("startsAt") else at
        if rec.get("status") == "firing" and t.fired is None:
            t.fired = starts
            labels = ", ".join(f"{k}={v}" for k, v in sorted((rec.get("labels") or {}).items()))
            t.rows.append((starts, f"Alert {_code(t.alertname or t.fingerprint)} fired ({labels})"))
            t.rows.append((at, f"Notification received from Alertmanager ({rec.get('receiver') or '-'})"))
        return
    if event == AuditEvent.ALERT_RESOLVED:
        if t.resolved is None:
            t.resolved = at
            t.rows.append((at, "Alert resolved"))
        return
    if event == AuditEvent.RULE_MATCHED and t.priority is None:
        t.priority = rec.get("priority")
        t.target = timedelta(seconds=float(rec.get("response_target_seconds") or 0))
    decided = event in (AuditEvent.APPROVAL_APPROVED, AuditEvent.APPROVAL_REJECTED)
    human = decided and rec.get("actor") != "system"
    acted = event == AuditEvent.ACTION_SUCCEEDED and rec.get("kind") == "action"
    if t.responded is None and (human or acted):
        t.responded = at
        t.response_by = (f"{rec.get('actor')} decided the approval" if human
                         else f"{rec.get('action')} succeeded")
    row = _describe(rec)
    if row is not None:
        t.rows.append((at, row))


def verdict(t: Timeline, now: datetime) -> str:
    """The response target: met, missed, or still open."""
    if t.priority is None or t.target is None:
        return "no rule matched: no response target applies"
    start = t.fired or (t.rows[0][0] if t.rows else now)
    head = f"{t.priority}, respond within {_hms(t.target)}: "
    if t.responded is not None:
        took = t.responded - start
        met = "**met**" if took <= t.target else "**missed**"
        return f"{head}{met} ({t.response_by} {_hms(took)} after it fired)"
    end = t.resolved or now
    if t.resolved is not None and end - start <= t.target:
        return f"{head}**met** (resolved {_hms(end - start)} after it fired, nothing needed)"
    if end - start > t.target:
        return f"{head}**missed** (no response within {_hms(t.target)})"
    return f"{head}open ({_hms(start + t.target - now)} left)"


def markdown(t: Timeline, now: datetime) -> str:
    """The post-mortem timeline of one alert."""
    rows = sorted(t.rows, key=lambda r: r[0])
    day = rows[0][0].strftime("%Y-%m-%d") if rows else ""
    lines = [f"## Incident timeline: {t.alertname or 'alert'} `{t.fingerprint}`", "",
             f"All times UTC, {day}." if day else "", "", "| Time | Event |", "|---|---|"]
    for at, text in rows:
        same_day = at.strftime("%Y-%m-%d") == day
        stamp = at.astimezone(UTC).strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
        cell = text.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {stamp} | {cell} |")
    lines += ["", f"- **Duration:** {duration_text(t, now)}", f"- **Response target:** {verdict(t, now)}", ""]
    return "\n".join(lines)


def duration_text(t: Timeline, now: datetime) -> str:
    """How long the alert fired: from its start to its resolution, or so far."""
    start = t.fired or (min(at for at, _ in t.rows) if t.rows else now)
    if t.resolved is not None:
        return f"{_hms(t.resolved - start)} (fired {start:%H:%M:%S}, resolved {t.resolved:%H:%M:%S})"
    return f"not resolved; {_hms(now - start)} so far"
