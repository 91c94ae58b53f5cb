"""Verification: did the remediation work? Watch for the alert's resolution, climb or escalate.

Built by ``receiver.runtime``. ``receiver.flow.decide`` calls :meth:`Verifier.acted` when a
rung's actions all succeeded (a watch is armed when the rung has ``verify``) and
:meth:`skipped` for a dry run (nothing acted, nothing to watch); ``receiver.flow.workers``
calls :meth:`stopped` when a climbed rung ends blocked or failed; ``receiver.flow.resolution``
hands it the timers a webhook's resolved alerts took (:meth:`resolution`). A watch that comes
due (``receiver.flow.timers``) is ``verify.failed``: then the next rung is queued (``else:
next``, through ``receiver.flow.enqueue``) or people are told (``else: escalate``). A
resolution after the failure is recorded as ``verify.resolved_late``.
``receiver.flow.guards.approvals`` calls :meth:`declined` (wired by the runtime) when an
approval is rejected or expires unanswered: a climbed rung's stops the ladder the same way.

A resolution also leaves a marker per firing (fingerprint, startsAt; a dedup claim kept
``guards.dedup_ttl``) in the state store, because taking the timers alone can miss one: a
watch not armed yet (its action still running) or held by the replica firing it. The
marker is claimed before the timers are taken
(``receiver.store.protocol.StateStore.close_resolved``), and read after a watch is armed
and before a due watch fails, climbs or escalates, so a resolution is not lost to either race.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog

from receiver.audit import AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Decision, Escalation, Reason
from receiver.flow.codec import ApprovalRequest, VerifyWatch
from receiver.flow.enqueue import Enqueuer
from receiver.flow.escalation import Case, Escalations
from receiver.flow.reload import RulesCoordinator
from receiver.flow.timers import TimerKind, Timers
from receiver.metrics import Metrics
from receiver.store.protocol import StateStore
from receiver.store.values import Approval, ApprovalStatus, Timer
from rules.alert import Alert
from rules.durations import format_duration
from rules.model import Rule

_log = structlog.get_logger("remediator.verify")
_DAY = 86_400.0
_LATE_FOR = _DAY  # a resolution this long after a failed watch is still recorded as late


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def incident_key(rule: str, alert: Alert) -> str:
    """One firing of one alert answered by one rule: what every rung of a ladder shares."""
    return f"{rule}\x1f{alert.fingerprint}\x1f{alert.starts_at_raw}"


def resolved_marker(alert: Alert) -> str:
    """The dedup key a resolved notification claims for one firing of one alert."""
    return f"resolved\x1f{alert.fingerprint}\x1f{alert.starts_at_raw}"


class Verifier:
    """Watches, their outcomes, and the climb from one rung to the next."""

    def __init__(self, *, store: StateStore, timers: Timers, escalations: Escalations,
                 audit: AuditLog, metrics: Metrics, clock: Clock, rules: RulesCoordinator,
                 enqueue: Enqueuer) -> None:
        self._store = store
        self._enqueue = enqueue
        self._timers = timers
        self._escalations = escalations
        self._audit = audit
        self._metrics = metrics
        self._clock = clock
        self._rules = rules
        timers.on(TimerKind.VERIFY, self._expired)
        timers.on(TimerKind.VERIFY_LATE, self._forget)

    def skipped(self, d: Decision) -> None:
        """A dry run of a rule that verifies: nothing acted, so nothing is watched (audited)."""
        step = d.rule.steps[min(d.rung, len(d.rule.steps) - 1)]
        if step.verify is None:
            return
        self._metrics.verifications.labels("skipped").inc()
        self._audit.record(AuditEvent.VERIFY_SKIPPED, decision=d.id, rule=d.rule.name,
                           fingerprint=d.alert.fingerprint, rung=d.rung, dry_run=True, reason=Reason.DRY_RUN,
                           detail="dry-run: no action ran, so no resolution is watched and nothing escalates")

    async def acted(self, d: Decision) -> None:
        """A rung's actions all succeeded: watch for the resolution when the rung verifies."""
        steps = d.rule.steps
        if d.rung >= len(steps) or steps[d.rung].verify is None:
            return
        step = steps[d.rung]
        assert step.verify is not None
        assert step.otherwise is not None
        now = self._clock.now()
        window = step.verify.resolved_within.total_seconds()
        watch = VerifyWatch(decision=d.id, rule=d.rule.name, rung=d.rung, alert=d.alert, priority=d.priority,
                            response_target=d.response_target.total_seconds(), started_at=now, window=window,
                            otherwise=step.otherwise)
        armed = await self._timers.arm(Timer(
            id=f"verify\x1f{d.id}", kind=TimerKind.VERIFY, fingerprint=d.alert.fingerprint,
            due_at=now + window, expires_at=now + window + _LATE_FOR + _DAY, payload=watch.as_data()))
        if armed:
            self._audit.record(AuditEvent.VERIFY_WATCHING, decision=d.id, rule=d.rule.name,
                               fingerprint=d.alert.fingerprint, rung=d.rung, resolved_within=window,
                               due=_iso(now + window), otherwise=step.otherwise)
        await self._settle_if_resolved(d.alert)  # it resolved while the actions ran: verified now

    async def _settle_if_resolved(self, alert: Alert) -> bool:
        """If this firing resolved already, do what its resolution did; True then.

        Taking the timers is atomic, so a resolution and this settle record each watch once.
        """
        if not await self._store.claimed(resolved_marker(alert)):
            return False
        self.resolution(await self._timers.take(alert.fingerprint))
        return True

    def resolution(self, taken: Sequence[Timer]) -> None:
        """Timers an alert's resolution took (after its marker was claimed): watches taken before
        they failed are verified, failed ones resolved late; other kinds record nothing here."""
        now = self._clock.now()
        for timer in taken:
            if timer.kind not in (TimerKind.VERIFY, TimerKind.VERIFY_LATE):
                continue
            w = VerifyWatch.from_data(timer.payload)
            took = now - w.started_at
            ids = {"decision": w.decision, "rule": w.rule, "fingerprint": timer.fingerprint,
                   "rung": w.rung, "resolved_within": w.window, "time_to_resolve_seconds": round(took, 3)}
            if timer.kind == TimerKind.VERIFY:
                self._metrics.verifications.labels("succeeded").inc()
                self._metrics.time_to_resolve.labels(w.rule).observe(took)
                self._audit.record(AuditEvent.VERIFY_SUCCEEDED, **ids)
                _log.info("verify.succeeded", rule=w.rule, rung=w.rung, seconds=round(took, 3))
            else:
                self._metrics.verifications.labels("resolved_late").inc()
                self._audit.record(AuditEvent.VERIFY_RESOLVED_LATE, **ids,
                                   overdue_seconds=round(took - w.window, 3))

    async def stopped(self, d: Decision, *, reason: Reason, detail: str) -> None:
        """A climbed rung ended blocked or failed: the ladder stops there, and people hear of it."""
        if d.rung == 0 or d.dry_run or reason in (Reason.ALREADY_DONE, Reason.STEP_RUNNING, Reason.TAKEN_OVER,
                                                  Reason.OUTCOME_UNKNOWN):
            return  # another run of the rung ended it, runs it, or asked a human already
        await self._escalations.send(Case(
            reason=Escalation.LADDER_STOPPED, key=incident_key(d.rule.name, d.alert),
            detail=f"rung {d.rung} of {d.rule.name} did not run to the end ({reason.value}): {detail}",
            about={"fingerprint": d.alert.fingerprint}, rule=d.rule.name, priority=d.priority,
            response_target=d.response_target.total_seconds(), alertname=d.alert.name, decision=d.id,
            rung=d.rung, to=d.rule.escalate_to))

    async def declined(self, approval: Approval) -> None:
        """An approval was rejected or expired unanswered: a climbed rung's ends the ladder there."""
        rule = self._rules.index.rule(approval.rule)
        if rule is None:
            _log.warning("verify.declined_rule_gone", rule=approval.rule, approval=approval.id)
            return
        d = ApprovalRequest.from_data(approval.payload).decision(approval, rule)
        if approval.status is ApprovalStatus.REJECTED:
            why = f": {approval.comment}" if approval.comment else ""
            reason = Reason.REJECTED
            detail = f"approval {approval.id} was rejected by {approval.decided_by}{why}"
        else:
            ttl = format_duration(timedelta(seconds=approval.expires_at - approval.created_at))
            reason, detail = Reason.EXPIRED, f"approval {approval.id} expired unanswered after {ttl}"
        await self.stopped(d, reason=reason, detail=detail)

    async def _forget(self, timer: Timer) -> None:
        """A failed watch's late-resolution record lapsed: nothing to do."""

    async def _expired(self, timer: Timer) -> None:
        w = VerifyWatch.from_data(timer.payload)
        now = self._clock.now()
        rule = self._rules.index.rule(w.rule)
        climb = w.otherwise == "next" and rule is not None and w.rung + 1 < len(rule.steps)
        first = await self._timers.arm(Timer(  # once per watch: a retried handler records nothing twice
            id=f"late\x1f{w.decision}", kind=TimerKind.VERIFY_LATE, fingerprint=timer.fingerprint,
            due_at=now + _LATE_FOR, expires_at=now + _LATE_FOR + _DAY, payload=w.as_data()))
        # A resolution that came while this replica held the due watch (so could not take
        # it) left its marker: no verify.failed; the settle below records it late, once.
        if first and not await self._store.claimed(resolved_marker(w.alert)):
            self._metrics.verifications.labels("failed").inc()
            self._audit.record(AuditEvent.VERIFY_FAILED, decision=w.decision, rule=w.rule,
                               fingerprint=timer.fingerprint, rung=w.rung, resolved_within=w.window,
                               otherwise="next" if climb else "escalate",
                               detail=f"the alert did not resolve within "
                                      f"{format_duration(timedelta(seconds=w.window))} of the remediation")
        if await self._settle_if_resolved(w.alert):
            return  # resolved: recorded late (by the resolution or here), no next rung, no escalation
        if climb:
            assert rule is not None
            await self._climb(w, rule)
            return
        why = "" if rule is not None or w.otherwise != "next" else \
            f"; rule {w.rule} is no longer loaded, so no next rung runs"
        await self._escalations.send(Case(
            reason=Escalation.VERIFY_FAILED, key=incident_key(w.rule, w.alert),
            detail=f"{w.rule} acted (rung {w.rung}), but the alert did not resolve within "
                   f"{format_duration(timedelta(seconds=w.window))}{why}",
            about={"fingerprint": timer.fingerprint}, rule=w.rule, priority=w.priority,
            response_target=w.response_target, alertname=w.alert.name, decision=w.decision,
            rung=w.rung, to=rule.escalate_to if rule is not None else None), retry=True)

    async def _climb(self, w: VerifyWatch, rule: Rule) -> None:
        """Queue the next rung as a decision of its own: every guard meets it again."""
        rung = w.rung + 1
        decision_id = hashlib.sha256(f"{w.decision}\x1frung{rung}".encode()).hexdigest()[:20]
        d = Decision(id=decision_id, dedup_key=f"rung\x1f{decision_id}", rule=rule, alert=w.alert,
                     priority=w.priority, dry_run=False, rung=rung,
                     response_target=timedelta(seconds=w.response_target))
        # Claimed and queued at once, as intake does: a crash before lets the timer, claimed
        # again after its lease, queue it; one queued already is not queued twice.
        fresh, _ = await self._enqueue.decisions([d])
        if not fresh:
            return
        self._audit.record(AuditEvent.RUNG_STARTED, decision=decision_id, rule=rule.name,
                           fingerprint=w.alert.fingerprint, rung=rung, climbed_from=w.decision,
                           previous_rung=w.rung, priority=w.priority,
                           response_target_seconds=w.response_target, dry_run=False)
        _log.info("verify.climbed", rule=rule.name, rung=rung, decision=decision_id)
