"""Intake: the cheap, inline part of a webhook — match, classify, dedup, audit, queue.

Called by ``receiver.http.handlers.webhook`` once per request, after the body is decoded.
Nothing here waits for a remediation. The order keeps promises to Alertmanager: every
record of the request (``alert.received``, ``rule.matched``) is made durable in the audit
log in one group first; then the decisions' dedup keys are claimed and their work queued
in the state store in one transaction (per 200, shared: ``receiver.flow.enqueue``), so a claim never exists
without its work; the duplicates it found are recorded and made durable; only then is 202
returned. If any step fails (store down, queue full, audit disk failing), the caller
answers 503 and the resend that follows is handled as if this request had never come —
or, when the store took the work but its answer was lost, as the duplicate it then is
(the work is queued and runs once). A ``for`` not yet elapsed and a duplicate end the
decision here, reported as every end is (``receiver.flow.report``). A resolved alert
closes what is open for it (pending approvals, verify watches) once the answer is settled,
all of the request's in one store call (``on_resolved``: ``receiver.flow.resolution``);
if the store fails there, the answer is 503 too (work queued by the request stays queued:
the re-send finds it claimed), so the resolution comes again.
While the backlog is known to be full, a request whose work does not fit is refused before
its alerts are recorded (one ``intake.failed`` record names them): under overload, refused
re-sends must not cost as much as accepted requests, or the overload feeds itself.
A large request gives the event loop a turn every :data:`YIELD_EVERY` alerts (matching,
then recording) and between store transactions of at most :data:`QUEUE_BATCH` decisions:
12,000 alerts in one request otherwise held every other request, ``/health`` included, for
half a second or more. Rules and time are read once, at the start, so what happens
meanwhile (a reload) does not split one request between two rule sets. Each decision's
claim and work stay one transaction; when the store fails after some batches, those are
queued (they run, and the resend finds them claimed) and only the rest are refused.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.clock import Clock, as_datetime
from receiver.decisions import Decision, Guard, Outcome, Reason, decision_identity
from receiver.errors import StateError, Unavailable
from receiver.flow.enqueue import Enqueuer
from receiver.flow.payload_schema import WebhookMessage
from receiver.flow.reload import RulesCoordinator
from receiver.flow.report import Ending, Report
from receiver.metrics import Metrics
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import BacklogFull
from rules.alert import Alert
from rules.priority import classify

_log = structlog.get_logger("remediator.intake")
YIELD_EVERY = 250  # alerts handled between turns of the event loop (a few ms of work)
QUEUE_BATCH = 200  # decisions claimed and queued per store transaction
_T = TypeVar("_T")


async def in_turns(items: Sequence[_T]) -> AsyncIterator[_T]:
    """``items``, letting the event loop run after each :data:`YIELD_EVERY` of them."""
    for i, item in enumerate(items):
        if i and not i % YIELD_EVERY:
            await asyncio.sleep(0)
        yield item


@dataclass(frozen=True, slots=True)
class IntakeSummary:
    """What the 202 answer reports."""

    received: int
    matched: int
    queued: int


class Intake:
    """Turns one decoded webhook into queued decisions."""

    def __init__(self, *, settings: Settings, rules: RulesCoordinator, state: StateStore,
                 audit: AuditLog, metrics: Metrics, report: Report, enqueue: Enqueuer, clock: Clock,
                 on_resolved: Callable[[list[Alert]], Awaitable[None]] | None = None) -> None:
        self._on_resolved = on_resolved
        self._settings = settings
        self._rules = rules
        self._state = state
        self._audit = audit
        self._metrics = metrics
        self._report = report
        self._enqueue = enqueue
        self._clock = clock
        self._backlog_full = False  # the last enqueue found no room: check before recording
        self._reserved = 0  # work of requests on their way from that check to the store

    def _record_alert(self, message: WebhookMessage, alert: Alert, actor: str) -> None:
        self._audit.record(
            AuditEvent.ALERT_RECEIVED,
            fingerprint=alert.fingerprint, status=alert.status, alertname=alert.name,
            labels=dict(alert.labels), startsAt=alert.starts_at_raw,
            endsAt=alert.ends_at, receiver=message.receiver, groupKey=message.groupKey,
            truncatedAlerts=message.truncatedAlerts, actor=actor, generatorURL=alert.generator_url,
        )

    async def accept(self, message: WebhookMessage, alerts: list[Alert], *, actor: str) -> IntakeSummary:
        """Match, classify and dedup ``alerts``; queue the new decisions durably recorded."""
        if message.truncatedAlerts:
            _log.warning("intake.truncated", truncated=message.truncatedAlerts, received=len(alerts),
                         group=message.groupKey,
                         hint="Alertmanager's max_alerts cut this notification; raise it or narrow the group")
        index = self._rules.index
        policy = self._settings.priorities
        now = as_datetime(self._clock)
        candidates: list[Decision] = []
        matched = 0
        found = [(alert, index.match(alert, now)) async for alert in in_turns(alerts)]
        for status, count in Counter(alert.status for alert in alerts).items():
            self._metrics.alerts_received.labels(status).inc(count)
        work = sum(not m.waiting for _, matches in found for m in matches)  # at most this many queued
        if self._backlog_full and work:
            await self._refuse_while_full(message, alerts, work)
        by_rule: Counter[str] = Counter()
        async for alert, matches in in_turns(found):
            self._record_alert(message, alert, actor)
            for match in matches:
                matched += 1
                rule = match.rule
                by_rule[rule.name] += 1
                priority = classify(alert, rule.priority, policy)
                dry_run = self._settings.dry_run or rule.dry_run
                key, decision_id = decision_identity(rule.name, alert, dry_run=dry_run)
                target = policy.response_target(priority)
                self._audit.record(
                    AuditEvent.RULE_MATCHED, decision=decision_id, rule=rule.name,
                    fingerprint=alert.fingerprint, alertname=alert.name, priority=priority,
                    response_target_seconds=target.total_seconds(), dry_run=dry_run,
                    waiting_for=match.waiting,
                )
                d = Decision(decision_id, key, rule, alert, priority, target, dry_run)
                if match.waiting:
                    self._report.ended(Ending.at_intake(
                        Guard.FOR, Reason.FOR_NOT_ELAPSED, f"active since {alert.starts_at_raw}, "
                        f"rule wants {rule.for_}", outcome=Outcome.SKIPPED), decision=d.id, d=d)
                    continue
                candidates.append(d)
        for name, count in by_rule.items():
            self._metrics.rule_matches.labels(name).inc(count)
        if not alerts or not candidates:
            await self._sync_or_unavailable([])
            summary = IntakeSummary(len(alerts), matched, 0)
        else:
            self._reserved += work
            try:
                summary = await self._queue_decisions(candidates, len(alerts), matched)
            finally:
                self._reserved -= work
        resolved = [a for a in alerts if a.status == "resolved"]
        if resolved and self._on_resolved is not None:
            await self._close_resolved(resolved)
        return summary

    async def _close_resolved(self, resolved: list[Alert]) -> None:
        """Close what is open for resolved alerts; a store failure is :class:`Unavailable`, so
        Alertmanager re-sends and the resolution is not lost (closing again changes nothing)."""
        assert self._on_resolved is not None
        try:
            await self._on_resolved(resolved)  # one store call for all of them
        except StateError as exc:
            why = f"state store unavailable: {exc}"
            _log.error("intake.close_resolved_failed", error=str(exc))
            self._audit.record(AuditEvent.INTAKE_FAILED, reason=why, answered=503, decisions=[],
                               fingerprints=[a.fingerprint for a in resolved])
            await self._sync_quietly()
            raise Unavailable(why) from None
        await self._sync_quietly()

    async def _queue_decisions(self, candidates: list[Decision], received: int,
                               matched: int) -> IntakeSummary:
        ids = [d.id for d in candidates]
        await self._sync_or_unavailable(ids)  # the request's records land before its work is queued
        fresh: list[Decision] = []
        duplicates: list[Decision] = []
        for start in range(0, len(candidates), QUEUE_BATCH):
            if start:
                await asyncio.sleep(0)
            try:
                queued, found = await self._enqueue.decisions(candidates[start:start + QUEUE_BATCH])
            except StateError as exc:  # batches before this one are queued: they run (and are
                self._backlog_full = isinstance(exc, BacklogFull)  # the resend's duplicates)
                why = str(exc) if isinstance(exc, BacklogFull) else f"state store unavailable: {exc}"
                self._metrics.decisions.labels(Outcome.QUEUED.value, Reason.QUEUED.value).inc(len(fresh))
                self._refuse(candidates[start:], why)
                await self._sync_quietly()
                raise Unavailable(why) from None
            fresh += queued
            duplicates += found
        for d in duplicates:
            self._report.ended(Ending.at_intake(Guard.DEDUP, Reason.DUPLICATE,
                                                "this firing was already handled by this rule",
                                                outcome=Outcome.BLOCKED), decision=d.id, d=d)
        if duplicates:
            await self._sync_or_unavailable(ids)
        self._metrics.decisions.labels(Outcome.QUEUED.value, Reason.QUEUED.value).inc(len(fresh))
        return IntakeSummary(received, matched, len(fresh))

    async def _refuse_while_full(self, message: WebhookMessage, alerts: list[Alert], work: int) -> None:
        """Refuse (:class:`Unavailable`) while the backlog has no room for ``work`` more items,
        before anything is recorded (duplicates among them are not known yet: counted too)."""
        size = self._settings.queue.size
        try:
            backlog = await self._state.backlog() + self._reserved
        except StateError:
            return  # the usual path meets the failure and answers for it
        if backlog <= size - size // 10:  # a tenth free again: stop reading the backlog first
            self._backlog_full = False
        if backlog + work <= size:
            return
        why = str(BacklogFull(size))
        _log.warning("intake.refused", reason=why, alerts=len(alerts))
        self._audit.record(AuditEvent.INTAKE_FAILED, reason=why, answered=503, groupKey=message.groupKey,
                           fingerprints=[a.fingerprint for a in alerts], decisions=[])
        await self._sync_quietly()
        raise Unavailable(why)

    def _refuse(self, candidates: list[Decision], why: str) -> None:
        _log.warning("intake.refused", reason=why, decisions=len(candidates))
        self._audit.record(AuditEvent.INTAKE_FAILED, reason=why,
                           decisions=[d.id for d in candidates], answered=503)

    async def _sync_quietly(self) -> None:
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))

    async def _sync_or_unavailable(self, decision_ids: list[str]) -> None:
        """Make this request's records durable; on failure refuse (503)."""
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))
            # Lands with the next write that succeeds, after this request's other records.
            self._audit.record(AuditEvent.INTAKE_FAILED, reason=f"audit log unavailable: {exc}",
                               decisions=decision_ids, answered=503)
            raise Unavailable(f"audit log unavailable: {exc}") from None
