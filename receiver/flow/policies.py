"""The runbooks' escalation policies that watch alerts rather than one remediation.

Built by ``receiver.runtime``; called through ``receiver.flow.guards.pipeline`` for live
decisions only (a dry run changes nothing, notifications included): :meth:`Policies.started`
when a decision starts (one at the first of ``priorities.levels``, P1 by default, arms a
timer: still firing ``escalation.p1_unresolved.after`` after it first arrived → escalate;
its resolution disarms it), :meth:`Policies.planned` once its subjects are known (one at
the second level, P2, answered by one rule on one subject ``count`` times within
``within`` → one root-cause review escalation per window). Both fire once across
replicas and restarts: the P1 timer is claimed once (``receiver.flow.timers``; a notifier
failing for now fails it, so it is sent again after the lease), the P2 escalation is a
dedup claim in the state store, given back when the sending fails so that the next
occurrence sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from receiver.clock import Clock
from receiver.decisions import Decision, Escalation
from receiver.errors import Undelivered
from receiver.flow.codec import P1Watch
from receiver.flow.escalation import Case, Escalations
from receiver.flow.reload import RulesCoordinator
from receiver.flow.timers import TimerKind, Timers
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import Timer
from rules.durations import format_duration

_KEEP = 7 * 86_400.0  # a P1 timer's id stays taken this long after it fired or was disarmed


class Policies:
    """P1 still firing, P2 recurring."""

    def __init__(self, settings: Settings, *, store: StateStore, timers: Timers, escalations: Escalations,
                 clock: Clock, rules: RulesCoordinator) -> None:
        self._settings = settings.escalation
        self._levels = settings.priorities.levels  # p1_unresolved: the first; p2_recurring: the second
        self._store = store
        self._timers = timers
        self._escalations = escalations
        self._clock = clock
        self._rules = rules
        timers.on(TimerKind.P1_UNRESOLVED, self._p1_due)

    async def started(self, d: Decision) -> None:
        """A live decision starts: a P1 arms its "still firing" timer (once per firing)."""
        policy = self._settings.p1_unresolved
        if policy is None or d.priority != self._levels[0] or d.alert.status != "firing":
            return
        now = self._clock.now()
        due = now + policy.after.total_seconds()
        await self._timers.arm(Timer(
            id=f"p1\x1f{d.alert.fingerprint}\x1f{d.alert.starts_at_raw}", kind=TimerKind.P1_UNRESOLVED,
            fingerprint=d.alert.fingerprint, due_at=due, expires_at=due + _KEEP,
            payload=P1Watch(rule=d.rule.name, decision=d.id, alert=d.alert, priority=d.priority,
                            response_target=d.response_target.total_seconds(), first_at=now,
                            after=policy.after.total_seconds()).as_data()))

    async def _p1_due(self, timer: Timer) -> None:
        w = P1Watch.from_data(timer.payload)
        rule = self._rules.index.rule(w.rule)
        await self._escalations.send(Case(
            reason=Escalation.P1_UNRESOLVED, key=f"{timer.fingerprint}\x1f{w.alert.starts_at_raw}",
            detail=f"{w.priority} alert {w.alert.name or timer.fingerprint} is still firing "
                   f"{format_duration(self._since(w.first_at))} after it first arrived; "
                   "a human should take it over",
            about={"fingerprint": timer.fingerprint}, rule=w.rule, priority=w.priority,
            headline=f"{w.priority} still firing: {w.alert.name or w.rule}",
            response_target=w.response_target, alertname=w.alert.name, decision=w.decision,
            to=rule.escalate_to if rule is not None else None), retry=True)

    def _since(self, at: float) -> timedelta:
        return timedelta(seconds=round(self._clock.now() - at))

    async def planned(self, d: Decision, subjects: Sequence[str]) -> None:
        """A live P2 decision was planned: count it per rule and subject; escalate once at ``count``."""
        policy = self._settings.p2_recurring
        if policy is None or self._levels[1:2] != [d.priority] or d.rung:
            return
        window = policy.within.total_seconds()
        for subject in dict.fromkeys(subjects or [d.alert.fingerprint]):
            key = f"p2\x1f{d.rule.name}\x1f{subject}"
            count = await self._store.count_occurrence(key, d.id, window=window)
            escalated = f"escalated\x1f{key}"
            if count < policy.count or not (await self._store.claim([escalated], ttl=window))[0]:
                continue
            try:
                await self._escalations.send(Case(
                    reason=Escalation.P2_RECURRING, key=key,
                    detail=f"{d.rule.name} answered a {d.priority} on {subject} {count} times within "
                           f"{format_duration(policy.within)}: the remediation treats a symptom, a "
                           "root-cause review is due",
                    about={"rule": d.rule.name}, rule=d.rule.name, priority=d.priority,
                    headline=f"recurring {d.priority}: root-cause review: {d.alert.name or d.rule.name}",
                    response_target=d.response_target.total_seconds(), alertname=d.alert.name,
                    decision=d.id, to=d.rule.escalate_to,
                    fields={"subject": subject, "occurrences": str(count)}), retry=True)
            except BaseException as exc:  # given back: the next occurrence in the window sends it
                await self._store.release([escalated])
                if not isinstance(exc, Undelivered):
                    raise
