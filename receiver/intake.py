"""Intake: the cheap, inline part of a webhook — match, classify, dedup, audit, queue.

Called by ``receiver.handlers.webhook`` once per request, after the body is decoded.
Nothing here waits for a remediation. The order keeps promises to Alertmanager: room in
the queue is reserved first, dedup keys are claimed, every record of the request is made
durable in the audit log in one group, and only then is work queued and 202 returned.
If any step fails, the claims are given back and the caller answers 503, so the resend
that follows is handled as if this request had never come.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.clock import Clock, as_datetime
from receiver.decisions import Decision, Outcome, Reason, decision_identity
from receiver.errors import StateError, Unavailable
from receiver.metrics import Metrics
from receiver.payload import WebhookMessage
from receiver.reload import RulesCoordinator
from receiver.settings import Settings
from receiver.state import StateStore
from receiver.workqueue import WorkQueue
from rules.alert import Alert
from rules.priority import classify

_log = structlog.get_logger("remediator.intake")


@dataclass(frozen=True, slots=True)
class IntakeSummary:
    """What the 202 answer reports."""

    received: int
    matched: int
    queued: int


class Intake:
    """Turns one decoded webhook into queued decisions."""

    def __init__(self, *, settings: Settings, rules: RulesCoordinator, state: StateStore,
                 audit: AuditLog, queue: WorkQueue, metrics: Metrics, clock: Clock) -> None:
        self._settings = settings
        self._rules = rules
        self._state = state
        self._audit = audit
        self._queue = queue
        self._metrics = metrics
        self._clock = clock

    def _record_alert(self, message: WebhookMessage, alert: Alert, actor: str) -> None:
        self._audit.record(
            AuditEvent.ALERT_RECEIVED,
            fingerprint=alert.fingerprint, status=alert.status, alertname=alert.name,
            labels=dict(alert.labels), startsAt=alert.starts_at_raw,
            endsAt=alert.ends_at, receiver=message.receiver, groupKey=message.groupKey,
            truncatedAlerts=message.truncatedAlerts, actor=actor,
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
        for alert in alerts:
            self._metrics.alerts_received.labels(alert.status).inc()
            self._record_alert(message, alert, actor)
            for match in index.match(alert, now):
                matched += 1
                rule = match.rule
                self._metrics.rule_matches.labels(rule.name).inc()
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
                if match.waiting:
                    self._metrics.decided(Outcome.SKIPPED, Reason.FOR_NOT_ELAPSED)
                    self._audit.record(
                        AuditEvent.GUARD_BLOCKED, decision=decision_id, rule=rule.name,
                        fingerprint=alert.fingerprint, guard="for", reason=Reason.FOR_NOT_ELAPSED,
                        detail=f"active since {alert.starts_at_raw}, rule wants {rule.for_}",
                    )
                    continue
                candidates.append(Decision(decision_id, key, rule, alert, priority, target, dry_run))
        if not alerts or not candidates:
            await self._sync_or_unavailable([], [])
            return IntakeSummary(len(alerts), matched, 0)
        return await self._queue_decisions(candidates, len(alerts), matched)

    async def _queue_decisions(self, candidates: list[Decision], received: int,
                               matched: int) -> IntakeSummary:
        if not self._queue.reserve(len(candidates)):
            self._refuse(candidates, "the work queue is full")
            await self._sync_quietly()
            raise Unavailable(f"work queue full ({self._queue.capacity}); send again later")
        claimed: list[str] = []
        try:
            ttl = self._settings.guards.dedup_ttl.total_seconds()
            fresh_flags = await self._state.claim([d.dedup_key for d in candidates], ttl=ttl)
            fresh = [d for d, ok in zip(candidates, fresh_flags, strict=True) if ok]
            claimed = [d.dedup_key for d in fresh]
            for d, ok in zip(candidates, fresh_flags, strict=True):
                if not ok:
                    self._metrics.guard_blocks.labels("dedup").inc()
                    self._metrics.decided(Outcome.BLOCKED, Reason.DUPLICATE)
                    self._audit.record(
                        AuditEvent.GUARD_BLOCKED, decision=d.id, rule=d.rule.name,
                        fingerprint=d.alert.fingerprint, guard="dedup", reason=Reason.DUPLICATE,
                        detail="this firing was already handled by this rule",
                    )
            await self._sync_or_unavailable(claimed, [d.id for d in candidates])
        except StateError as exc:
            self._queue.unreserve(len(candidates))
            self._refuse(candidates, f"state store unavailable: {exc}")
            await self._sync_quietly()
            raise Unavailable(f"state store unavailable: {exc}") from None
        except BaseException:
            self._queue.unreserve(len(candidates))
            raise
        self._queue.unreserve(len(candidates) - len(fresh))
        self._metrics.decisions.labels(Outcome.QUEUED.value, Reason.QUEUED.value).inc(len(fresh))
        await self._queue.put_reserved(fresh)
        return IntakeSummary(received, matched, len(fresh))

    def _refuse(self, candidates: list[Decision], why: str) -> None:
        _log.warning("intake.refused", reason=why, decisions=len(candidates))
        self._audit.record(AuditEvent.INTAKE_FAILED, reason=why,
                           decisions=[d.id for d in candidates], answered=503)

    async def _sync_quietly(self) -> None:
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))

    async def _sync_or_unavailable(self, claimed: list[str], decision_ids: list[str]) -> None:
        """Make this request's records durable; on failure give claims back and refuse."""
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))
            # Lands with the next write that succeeds, after this request's other records.
            self._audit.record(AuditEvent.INTAKE_FAILED, reason=f"audit log unavailable: {exc}",
                               decisions=decision_ids, answered=503)
            if claimed:
                try:
                    await self._state.release(claimed)
                except StateError as rel:
                    _log.error("state.release_failed", error=str(rel), keys=len(claimed))
            raise Unavailable(f"audit log unavailable: {exc}") from None
