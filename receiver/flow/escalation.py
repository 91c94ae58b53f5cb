"""Escalations: tell people that automation did not, or must not, carry on.

Built by ``receiver.runtime``; called by ``receiver.flow.verify`` (a remediation whose alert did
not resolve in time, a ladder that stopped), ``receiver.flow.guards.once`` (a step whose
outcome was lost with the process that sent it), ``receiver.flow.policies`` (a P1 still firing, a
P2 that keeps coming back), the circuit breakers and the blast radius. One notice per
escalation, to the rule's ``escalate_to`` notifiers, else ``escalation.notifiers``, else
the announcing ones, through ``receiver.flow.announce`` (which audits a notifier's failure).
The notice carries the priority, the response target, what was tried and an excerpt of
the audit log; its ``dedup_key`` is stable per incident and reason, so PagerDuty never
pages twice for one. Each is audited ``escalation.sent`` and counted by reason.
A caller that tries again (a timer handler, the P2 policy) asks for ``retry``: then a
notifier failing for now raises :class:`Undelivered` and nothing counts as sent yet; sent
again, the notice reaches every notifier again (at least once: PagerDuty deduplicates by
the key, Slack and webhooks may see it twice).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.decisions import Escalation
from receiver.errors import Undelivered
from receiver.flow.announce import Announcer
from receiver.flow.notices import console_link
from receiver.metrics import Metrics
from receiver.settings import Settings
from remediations.notify.delivery import Notice
from rules.durations import format_duration

_log = structlog.get_logger("remediator.escalation")
_TAIL_BYTES = 1 << 20  # the audit excerpt comes from the log's last MiB
_EXCERPT_RECORDS = 8
_TRIED = ("action.succeeded", "action.failed", "action.skipped", "guard.blocked")
_TITLES = {
    Escalation.VERIFY_FAILED: "not resolved after remediation",
    Escalation.LADDER_STOPPED: "remediation ladder stopped",
    Escalation.P1_UNRESOLVED: "still firing",  # policies.py names the level in its headline
    Escalation.P2_RECURRING: "recurring: root-cause review",
    Escalation.CIRCUIT_OPEN: "circuit breaker open",
    Escalation.BLAST_RADIUS: "blast radius reached, automation paused",
    Escalation.OUTCOME_UNKNOWN: "outcome of an action unknown after a restart",
    Escalation.DEFER_EXHAUSTED: "waited too long behind a guard, not run",
}


@dataclass(frozen=True, slots=True)
class Case:
    """One thing to escalate. ``key`` names the incident (stable across retries and replicas);
    ``about`` selects the audit records the excerpt and "what was tried" come from (all
    recent ones when empty)."""

    reason: Escalation
    key: str
    detail: str
    about: Mapping[str, str]
    rule: str | None = None
    priority: str | None = None
    response_target: float | None = None
    alertname: str | None = None
    decision: str | None = None
    rung: int | None = None
    to: Sequence[str] | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    headline: str | None = None
    """The title after "Escalation: "; unset: the reason and the alert."""

    @property
    def dedup_key(self) -> str:
        digest = hashlib.sha256(f"{self.reason.value}\x1f{self.key}".encode()).hexdigest()[:24]
        return f"remediator-{self.reason.value}-{digest}"


def _incident_link(console: str | None, fingerprint: object) -> dict[str, str]:
    """The console page of the alert's incident, when the console's address is configured."""
    if not isinstance(fingerprint, str) or not fingerprint:
        return {}
    page = console_link(console, f"incidents/{fingerprint}")
    return {"Incident in the console": page} if page else {}


class Escalations:
    """Sends escalations; one per process."""

    def __init__(self, settings: Settings, *, announcer: Announcer, audit: AuditLog,
                 metrics: Metrics) -> None:
        self._settings = settings.escalation
        self._console = settings.console.external_url
        self._urgent = (None, *settings.priorities.levels[:2])  # critical: the two most urgent levels
        self._announcer = announcer
        self._audit = audit
        self._metrics = metrics

    async def send(self, case: Case, *, retry: bool = False) -> list[str]:
        """Deliver ``case``; audited ``escalation.sent`` with what was sent (maybe nothing).

        ``retry``: the caller sends it again later, so a notifier that failed for now raises
        :class:`Undelivered` (its ``notify.failed`` audited) instead.
        """
        records = await self._records(case.about)
        tried = _tried(records)
        to = list(case.to) if case.to else (self._settings.notifiers or self._announcer.default)
        target = case.response_target
        respond = [f"Response target: {format_duration(timedelta(seconds=target))}"] if target else []
        notice = Notice(
            title="Escalation: " + (case.headline or f"{_TITLES[case.reason]}: "
                                                      f"{case.alertname or case.rule or case.key}")
                  + (f" ({case.priority})" if case.priority else ""),
            severity="critical" if case.priority in self._urgent else "warning",
            text="\n".join([
                case.detail,
                *respond,
                "", "Tried:", *([f"- {t}" for t in tried] or ["- nothing yet"]),
                "", "Audit log (latest):", *[_line(r) for r in records[-_EXCERPT_RECORDS:]],
            ]),
            dedup_key=case.dedup_key,
            fields={"reason": case.reason.value,
                    **{k: str(v) for k, v in (("rule", case.rule), ("priority", case.priority),
                                              ("decision", case.decision), ("rung", case.rung))
                       if v is not None},
                    **{k: v for k, v in case.about.items() if k != "event"}, **case.fields},
            links=_incident_link(self._console, case.about.get("fingerprint")),
        )
        sent, failed = await self._announcer.deliver(notice, to=to)
        if retry and failed:
            _log.warning("escalation.undelivered", reason=case.reason, rule=case.rule,
                         dedup_key=case.dedup_key, failed=failed)
            raise Undelivered(f"escalation {case.dedup_key}: {', '.join(failed)} failed for now; "
                              "it is sent again later")
        self._metrics.escalations.labels(case.reason.value).inc()
        self._audit.record(AuditEvent.ESCALATION_SENT, reason=case.reason, detail=case.detail,
                           dedup_key=case.dedup_key, notifiers=to, sent=sent, rule=case.rule,
                           priority=case.priority, decision=case.decision, rung=case.rung,
                           response_target_seconds=case.response_target, tried=tried,
                           fingerprint=case.about.get("fingerprint"), about=dict(case.about))
        _log.warning("escalation.sent", reason=case.reason, rule=case.rule, dedup_key=case.dedup_key,
                     sent=len(sent))
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))
        return sent

    async def _records(self, about: Mapping[str, str]) -> list[dict[str, Any]]:
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))
        return [r for r in _tail(self._audit.path) if all(r.get(k) == v for k, v in about.items())]


def _tail(path: Path) -> list[dict[str, Any]]:
    """The records of the audit log's last MiB (a first partial line dropped)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    lines = data.splitlines()[1:] if size > _TAIL_BYTES else data.splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _tried(records: list[dict[str, Any]]) -> list[str]:
    """One line per step that ran or was stopped: its plan's first line (or its action), the outcome."""
    plans = {(r.get("decision"), r.get("step")): r["plan"]["steps"][0] for r in records
             if r.get("event") == "action.planned" and r.get("plan", {}).get("steps")}
    seen: dict[tuple[Any, ...], str] = {}
    for r in records:
        event = r.get("event")
        if event not in _TRIED:
            continue
        if event == "guard.blocked":
            key: tuple[Any, ...] = (r.get("decision"), "blocked")
            line = f"stopped by {r.get('guard')}: {r.get('reason')}"
        else:
            key = (r.get("decision"), r.get("step"))
            what = plans.get(key) or f"{r.get('action')} on {r.get('target')}"
            line = f"{what}: {event.split('.', 1)[1]}" + (f" ({r['reason']})" if r.get("reason") else "")
        if r.get("rung"):
            line += f" [rung {r['rung']}]"
        seen[key] = line  # the last attempt's outcome
    return list(seen.values())


def _line(r: dict[str, Any]) -> str:
    extra = " ".join(str(r[k]) for k in ("action", "guard", "reason") if r.get(k))
    detail = f" - {str(r['detail'])[:120]}" if r.get("detail") else ""
    return f"{r.get('ts', '?')} {r.get('event', '?')} {extra}{detail}".rstrip()


