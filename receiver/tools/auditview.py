"""Reading audit logs back: records merged over files, filtered, and incident timelines.

Called by ``receiver.cli.audit`` (``remediator audit list`` and ``audit timeline``). Pure
reading: the files are opened read-only and never locked, so a running service's log can
be read. Several files (one per replica) merge into one sequence by time, newest last.
The record shape is ``receiver.audit``'s: ``seq``, ``ts``, ``event`` and the event's fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from receiver.audit import AuditEvent
from receiver.errors import ReceiverError
from rules.durations import format_duration, parse_duration
from rules.errors import RuleError


class AuditReadError(ReceiverError):
    """An audit file or a filter that cannot be used (the message names which)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One record and where it came from."""

    file: str
    line: int
    record: dict[str, Any]

    @property
    def at(self) -> datetime:
        return parse_ts(self.record["ts"])


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_when(text: str, now: datetime) -> datetime:
    """``--since``/``--until``: a duration back from now (``2h``) or an RFC 3339 time."""
    try:
        return now - parse_duration(text)
    except RuleError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise AuditReadError(f"{text!r} is neither a duration (30m, 2h, 7d) nor an RFC 3339 time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def read_entries(paths: Sequence[Path]) -> tuple[list[Entry], list[str]]:
    """Every record of ``paths``, merged by time (stable: file order, then line); and the
    problems met (FILE:LINE: unreadable), which skip only that line."""
    entries: list[Entry] = []
    problems: list[str] = []
    for path in paths:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise AuditReadError(f"{path}: cannot read: {exc.strerror}") from None
        for n, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                parse_ts(rec["ts"])
                rec["event"] = str(rec["event"])
            except (ValueError, KeyError, TypeError, AttributeError):
                problems.append(f"{path}:{n}: not an audit record; skipped")
                continue
            entries.append(Entry(str(path), n, rec))
    entries.sort(key=lambda e: e.at)
    return entries, problems


@dataclass
class Filter:
    """What ``audit list`` keeps; every given criterion must hold."""

    since: datetime | None = None
    until: datetime | None = None
    rules: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    def keep(self, entry: Entry) -> bool:
        rec = entry.record
        if self.since is not None and entry.at < self.since:
            return False
        if self.until is not None and entry.at > self.until:
            return False
        if self.rules and rec.get("rule") not in self.rules:
            return False
        if self.alerts and not any(str(rec.get("fingerprint", "")).startswith(a) for a in self.alerts):
            return False
        if self.events and not any(_event_matches(rec["event"], e) for e in self.events):
            return False
        return not self.outcomes or any(o in (rec.get("outcome"), rec.get("reason")) for o in self.outcomes)


def _event_matches(event: str, wanted: str) -> bool:
    """``approval.approved`` exactly, or every ``approval.*`` for ``approval`` / ``approval.*``."""
    prefix = wanted.removesuffix("*").removesuffix(".")
    return event == wanted or event.startswith(prefix + ".")


def known_event(wanted: str) -> bool:
    return any(_event_matches(e.value, wanted) for e in AuditEvent)


def summary(rec: dict[str, Any]) -> str:
    """One line saying what a record is about (the DETAIL column)."""
    event = rec["event"]
    if event == AuditEvent.ALERT_RECEIVED:
        return f"{rec.get('status')} {rec.get('alertname') or ''} from {rec.get('receiver') or '-'}".strip()
    if event == AuditEvent.RULE_MATCHED:
        wait = " (waiting for its for:)" if rec.get("waiting_for") else ""
        return f"{rec.get('priority')}{' dry-run' if rec.get('dry_run') else ''}{wait}"
    if event.startswith("action."):
        step = f"{rec.get('action')}{' on ' + rec['target'] if rec.get('target') else ''}"
        result = rec.get("result") or {}
        tail = result.get("summary") or rec.get("detail") or ""
        return f"{step}: {tail}" if tail else step
    if event.startswith("approval."):
        who = f" by {rec['actor']}" if rec.get("actor") else ""
        note = f": {rec['comment']}" if rec.get("comment") else ""
        return f"{rec.get('approval')}{who}{note}"
    return str(rec.get("detail") or rec.get("reason") or "")


# --- incident timelines -------------------------------------------------------------


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
    start = t.fired or (rows[0][0] if rows else now)
    if t.resolved is not None:
        duration = f"{_hms(t.resolved - start)} (fired {start:%H:%M:%S}, resolved {t.resolved:%H:%M:%S})"
    else:
        duration = f"not resolved; {_hms(now - start)} so far"
    lines += ["", f"- **Duration:** {duration}", f"- **Response target:** {verdict(t, now)}", ""]
    return "\n".join(lines)
