"""``remediator simulate``: what the service would do with a webhook, without doing it.

Called by ``receiver.cli.simulate``. Payloads (one webhook body, or JSON Lines of bodies
each with a ``timestamp``) go through the real pipeline in a
:class:`receiver.tools.sandbox.Sandbox`: nothing is contacted, no state is written (``--state``
is read through a copy). Before each delivery every guard is asked, read-only, what it
would say about each matched rule (``for``, maintenance, kill switch, cooldown, rate
limit, blast radius, circuit breaker, approval); then the delivery runs and its outcome
(including dedup, which only the run can tell) and rendered plan are reported.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from receiver.clock import ManualClock, as_datetime
from receiver.errors import ReceiverError
from receiver.flow.guards import Guard
from receiver.flow.guards.budget import budget_for
from receiver.flow.guards.maintenance import active_window
from receiver.flow.payload import PayloadError, parse_webhook
from receiver.flow.payload_schema import WebhookMessage
from receiver.flow.steps import action_context
from receiver.store.values import Budget, Verdict
from receiver.tools.sandbox import Observer, Sandbox, Seen
from remediations.base import RemediationError
from rules.alert import Alert
from rules.engine import Match
from rules.errors import TemplateError
from rules.priority import classify

_ACTOR = "simulate"


class SimulationError(ReceiverError):
    """A payload file that cannot be simulated; the message names file, line and JSON path."""


@dataclass(frozen=True, slots=True)
class Feed:
    """One webhook to deliver, at ``at`` (None: the clock as it is)."""

    source: str  # FILE or FILE:LINE
    message: WebhookMessage
    alerts: list[Alert]
    at: float | None


def _timestamp(value: Any, where: str) -> float:
    if not isinstance(value, str):
        raise SimulationError(f"{where}: $.timestamp must be an RFC 3339 time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SimulationError(f"{where}: $.timestamp: not an RFC 3339 time: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        raise SimulationError(f"{where}: $.timestamp: needs a time zone: {value[:64]!r}")
    return parsed.timestamp()


def _feed(body: bytes, where: str) -> Feed:
    try:
        message, alerts = parse_webhook(body)
    except PayloadError as exc:
        raise SimulationError(f"{where}: {exc.path}: {exc.message}") from None
    stamp = json.loads(body).get("timestamp")
    return Feed(where, message, alerts, None if stamp is None else _timestamp(stamp, where))


def read_feeds(path: Path) -> list[Feed]:
    """One webhook body, or JSON Lines of them (each may carry a top-level ``timestamp``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SimulationError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        json.loads(data)
        single = True
    except ValueError:
        single = False
    if single:
        return [_feed(data, str(path))]
    feeds = [_feed(line, f"{path}:{n}") for n, line in enumerate(data.splitlines(), start=1) if line.strip()]
    if not feeds:
        raise SimulationError(f"{path}: no webhook body in it")
    return feeds


@dataclass
class GuardVerdict:
    guard: str
    verdict: str  # ok, blocked, required, not_needed, skipped
    detail: str = ""


@dataclass
class DecisionReport:
    rule: str
    priority: str | None
    response_target_seconds: float | None
    dry_run: bool
    guards: list[GuardVerdict]
    outcome: str
    detail: str
    plan: list[dict[str, Any]]
    diagnose: list[dict[str, Any]]


@dataclass
class AlertReport:
    source: str
    at: str
    fingerprint: str
    alertname: str
    status: str
    decisions: list[DecisionReport] = field(default_factory=list)


class Simulation:
    """Feeds webhooks through one sandbox, probing the guards before each delivery."""

    def __init__(self, sandbox: Sandbox, clock: ManualClock) -> None:
        self.sandbox = sandbox
        self.clock = clock
        self.observer = Observer()

    async def feed(self, feed: Feed) -> list[AlertReport]:
        if feed.at is not None:
            if feed.at < self.clock.now():
                raise SimulationError(f"{feed.source}: $.timestamp goes back in time; "
                                      "JSON Lines must be in time order")
            self.clock.advance(feed.at - self.clock.now())
        await self.sandbox.housekeep()
        runtime = self.sandbox.runtime
        now = as_datetime(self.clock)
        probes: dict[tuple[str, str], list[GuardVerdict]] = {}
        for alert in feed.alerts:
            for match in runtime.rules.index.match(alert, now):
                probes[(alert.fingerprint, match.rule.name)] = await self._probe(alert, match)
        delivery = await self.sandbox.deliver(feed.message, feed.alerts, actor=_ACTOR)
        seen = self.observer.step(delivery.records, [a.fingerprint for a in feed.alerts])
        at = now.isoformat(timespec="seconds").replace("+00:00", "Z")
        reports = []
        for alert in feed.alerts:
            report = AlertReport(feed.source, at, alert.fingerprint, alert.name, alert.status)
            for s in (s for s in seen if s.fingerprint == alert.fingerprint):
                guards = probes.get((alert.fingerprint, s.rule), [])
                report.decisions.append(_decision(s, guards))
            reports.append(report)
        return reports

    async def _probe(self, alert: Alert, match: Match) -> list[GuardVerdict]:
        """Every guard's verdict on (alert, rule) now, read-only, in the pipeline's order."""
        runtime = self.sandbox.runtime
        settings = runtime.settings
        rule = match.rule
        dry_run = settings.dry_run or rule.dry_run
        out = [GuardVerdict(Guard.FOR.value, "blocked" if match.waiting else "ok",
                            f"rule wants {rule.for_}" if match.waiting else "")]
        if dry_run:
            return [*out, GuardVerdict("live_guards", "skipped", "dry-run: plans only, nothing is spent")]
        window = active_window(settings.guards.maintenance, alert, self.clock.now())
        out.append(GuardVerdict(Guard.MAINTENANCE.value, "ok" if window is None else "blocked",
                                "" if window is None else f"window {window.name!r}"))
        pause = await runtime.state.get_pause()
        out.append(GuardVerdict(Guard.KILL_SWITCH.value, "ok" if pause is None else "blocked",
                                "" if pause is None else f"paused by {pause.actor}: {pause.detail}"))
        priority = classify(alert, rule.priority, settings.priorities)
        approval = False
        for spec in rule.steps[0].actions:
            action = runtime.registry.get(spec.action)
            if action is None:
                continue
            try:
                params = action.parse_params(action.render_params(spec.compiled_params, alert))
            except (TemplateError, RemediationError) as exc:
                out.append(GuardVerdict("plan", "blocked", f"{spec.action}: {exc}"))
                continue
            ctx = action_context(settings, decision=_ACTOR, rule=rule.name, alert=alert, target=spec.target,
                                 dry_run=False, calls=runtime.calls)
            subject = action.subject(ctx, params)
            out += await self._budgets(budget_for(settings, rule, subject, _ACTOR))
            if spec.target is not None:
                circuit = await runtime.state.circuit(spec.target)
                is_open = circuit.is_open(self.clock.now())
                out.append(GuardVerdict(Guard.CIRCUIT_BREAKER.value, "blocked" if is_open else "ok",
                                        f"target {spec.target}: {circuit.failures} failures in a row"
                                        if is_open else f"target {spec.target}"))
            approval = approval or action.approval_always or rule.approval_required(
                priority, destructive=action.is_destructive(params))
        out.append(GuardVerdict(Guard.APPROVAL.value, "required" if approval else "not_needed"))
        return out

    async def _budgets(self, budget: Budget) -> list[GuardVerdict]:
        """Cooldown, rate limit and blast radius asked one at a time (a store answers the first)."""
        parts = [
            (Guard.COOLDOWN, dataclasses.replace(budget, rate_key=None, blast_max=None), ""),
            (Guard.RATE_LIMIT, dataclasses.replace(budget, cooldown_key=None, blast_max=None), ""),
            (Guard.BLAST_RADIUS, dataclasses.replace(budget, cooldown_key=None, rate_key=None), ""),
        ]
        out = []
        for guard, part, detail in parts:
            applies = {Guard.COOLDOWN: part.cooldown_key, Guard.RATE_LIMIT: part.rate_key,
                       Guard.BLAST_RADIUS: part.blast_max}[guard] is not None
            if not applies:
                out.append(GuardVerdict(guard.value, "ok", "not configured"))
                continue
            admission = await self.sandbox.runtime.state.admit(part, spend=False)
            ok = admission.verdict is Verdict.OK
            wait = f"free again in {admission.retry_after:.0f}s" if admission.retry_after else ""
            out.append(GuardVerdict(guard.value, "ok" if ok else "blocked",
                                    detail if ok else "; ".join(x for x in (detail, wait) if x)))
        return out


def _decision(s: Seen, guards: list[GuardVerdict]) -> DecisionReport:
    if s.outcome == "duplicate":
        guards = [*guards[:1], GuardVerdict(Guard.DEDUP.value, "blocked", s.detail), *guards[1:]]
    elif guards and guards[0].verdict == "ok":
        guards = [*guards[:1], GuardVerdict(Guard.DEDUP.value, "ok"), *guards[1:]]
    return DecisionReport(rule=s.rule, priority=s.priority, response_target_seconds=s.response_target_seconds,
                          dry_run=s.dry_run, guards=guards, outcome=s.outcome, detail=s.detail,
                          plan=s.actions, diagnose=s.diagnose)


def report_dict(report: AlertReport) -> dict[str, Any]:
    return dataclasses.asdict(report)
