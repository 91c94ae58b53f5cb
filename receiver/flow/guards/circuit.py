"""Circuit breakers per target: after N consecutive failures there, automatic attempts stop.

A stage of ``receiver.flow.guards.pipeline``: peeked before an approval is asked, checked
again before execute, and told every final outcome of an execution. Open, it stops a step
``circuit_open`` until the cool-off ends (``retry_after``: the work is deferred until then,
``receiver.flow.deferral``). Then it is half-open: one step, the one that claims the
opening's trial (a dedup claim named by the target and the opening), goes through; the others
wait for its outcome (``circuit_trial``). A success closes it (a streak of failures ends), a
failure opens it again. Every opening is audited (``circuit.opened``); the first of a streak
(the failure that reaches the threshold) is escalated (``receiver.flow.escalation``, reason
``circuit_open``; a plain announcement when ``escalation.circuit_open`` is off), the
re-openings of the same streak are not. It closes early when an admin resets it
(``POST /api/v1/circuits/{target}/reset``).
"""

from __future__ import annotations

from receiver.audit import AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Escalation, Reason
from receiver.flow.announce import Announcer
from receiver.flow.escalation import Case, Escalations
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import NOTHING, Hold, StepRun
from receiver.flow.steps import StepFailed
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import Circuit
from remediations.base import Result
from remediations.notify.delivery import Notice

_EVERY = 1_000_000  # woken when a circuit closes: everything that waits for it


def waits_for(target: str) -> str:
    """What a decision deferred by ``target``'s circuit waits for (``StateStore.wake_deferred``)."""
    return f"circuit:{target}"


class Breakers:
    """The breakers of every target, in the state store."""

    def __init__(self, settings: Settings, *, store: StateStore, audit: AuditLog, announcer: Announcer,
                 clock: Clock, escalations: Escalations) -> None:
        self._threshold = settings.guards.circuit_breaker.failures
        self._cooloff = settings.guards.circuit_breaker.cooloff.total_seconds()
        self._store = store
        self._audit = audit
        self._announcer = announcer
        self._escalations = escalations if settings.escalation.circuit_open else None
        self._clock = clock

    async def check(self, target: str) -> Circuit:
        """Raise :class:`Blocked` while the circuit is open; the circuit as it is."""
        circuit = await self._store.circuit(target)
        if circuit.is_open(self._clock.now()):
            assert circuit.open_until is not None
            raise Blocked(Guard.CIRCUIT_BREAKER, Reason.CIRCUIT_OPEN,
                          f"target {target} failed {circuit.failures} times in a row; automatic "
                          f"attempts stop for {circuit.open_until - self._clock.now():.0f}s more "
                          "or until an admin resets it",
                          retry_after=circuit.open_until - self._clock.now(), waits_for=waits_for(target))
        return circuit

    async def peek(self, run: StepRun) -> None:
        if run.step.ctx.target_name is not None:
            await self.check(run.step.ctx.target_name)

    async def enter(self, run: StepRun) -> Hold:
        target = run.step.ctx.target_name
        if target is None:
            return NOTHING
        circuit = await self.check(target)
        trial = None
        if circuit.open_until is not None:  # half-open: one trial, the others wait for its outcome
            trial = f"circuit-trial\x1f{target}\x1f{circuit.open_until!r}"
            if not (await self._store.claim([trial], ttl=self._cooloff))[0]:
                raise Blocked(Guard.CIRCUIT_BREAKER, Reason.CIRCUIT_TRIAL,
                              f"target {target} is half-open after {circuit.failures} failures in a row; "
                              "another attempt is its trial, this one waits for its outcome",
                              waits_for=waits_for(target))
        return _Outcome(self, target, run.decision, trial)

    async def record(self, target: str, *, ok: bool, decision: str, detail: str,
                     trial: bool = False) -> Circuit:
        circuit = await self._store.record_result(target, ok=ok, threshold=self._threshold,
                                                  cooloff=self._cooloff)
        if ok and trial:  # the half-open trial succeeded: closed, what waits for it goes now
            await self._store.wake_deferred(waits_for(target), count=_EVERY)
        # Every failure from the threshold on (re)opens it: at the threshold, or the trial
        # attempt after a cool-off failing again. People hear of the streak once, at its start.
        if not ok and circuit.failures >= self._threshold:
            first = circuit.failures == self._threshold
            self._audit.record(AuditEvent.CIRCUIT_OPENED, target=target, failures=circuit.failures,
                               open_until=circuit.open_until, decision=decision, detail=detail,
                               streak_start=first)
            if not first:
                return circuit
            text = (f"{circuit.failures} consecutive failures on {target}; the last: {detail}\n"
                    f"Automatic attempts there stop for {self._cooloff:.0f}s. A human should look.")
            if self._escalations is not None:
                await self._escalations.send(Case(
                    reason=Escalation.CIRCUIT_OPEN, key=target, detail=text, about={"target": target},
                    decision=decision, fields={"failures": str(circuit.failures)},
                    headline=f"circuit open for target {target}"))
            else:
                await self._announcer.announce(Notice(
                    title=f"remediator: circuit open for target {target}", severity="critical", text=text,
                    dedup_key=f"remediator-circuit-{target}",
                    fields={"target": target, "failures": str(circuit.failures), "decision": decision},
                ))
        return circuit

    async def give_back_trial(self, trial: str) -> None:
        await self._store.release([trial])

    async def reset(self, target: str, *, actor: str) -> Circuit:
        before = await self._store.reset_circuit(target)
        await self._store.wake_deferred(waits_for(target), count=_EVERY)
        self._audit.record(AuditEvent.ADMIN_CIRCUIT_RESET, target=target, actor=actor,
                           failures=before.failures)
        await self._audit.sync()
        return before


class _Outcome(Hold):
    """A step let through to a target: its final outcome feeds the target's breaker."""

    def __init__(self, breakers: Breakers, target: str, decision: str, trial: str | None) -> None:
        self._breakers = breakers
        self._target = target
        self._decision = decision
        self._trial = trial

    async def give_back(self) -> None:
        """Stopped before it executed: its half-open trial goes to the next step that comes."""
        if self._trial is not None:
            await self._breakers.give_back_trial(self._trial)

    async def finish(self, outcome: Result | StepFailed | None) -> None:
        if isinstance(outcome, StepFailed):
            await self._breakers.record(self._target, ok=False, decision=self._decision,
                                        detail=outcome.detail)
        elif outcome is not None:
            await self._breakers.record(self._target, ok=True, decision=self._decision, detail="",
                                        trial=self._trial is not None)
