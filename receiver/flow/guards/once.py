"""The execute-once marker: what is known of a step's execution, so that it runs once and is never lost.

:class:`ExecuteOnce` is a stage of ``receiver.flow.guards.pipeline``, right before the target
lock. It keeps a marker per (decision, step) in the state store (``guards.dedup_ttl``) whose
state says what is known (``receiver.store.values.StepState``):

- ``claimed``: a run holds the step and has sent nothing. Given back (removed) whenever the
  step stops before a request goes out, and while the worker waits to retry an attempt that
  sent nothing (``TemporaryError(nothing_sent=True)``); a run that died holding it sent
  nothing, so the next run takes it over.
- ``sending``: ``action.started`` is durable and a request is about to go out, or went out;
  its outcome is not recorded yet.
- ``done``: the outcome is recorded (``succeeded``, ``failed`` or ``unknown``).

Work taken up again (after a crash, a failed completion, an approved plan queued twice)
finds the marker and acts on what it says: ``done`` and succeeded, the step is not run again
and the decision goes on (``action.skipped``, ``already_done``); ``done`` otherwise, the
decision stops there (its outcome is in the audit log). ``sending`` held by a run of this
process still at work stops the newcomer (``step_running``). ``sending`` left by a run that
is gone is resolved, never skipped: the action reads its target back where it can
(``Action.read_back``): the change is there, ``action.succeeded`` with the evidence; it is not
and the action may be repeated (idempotent or not destructive), ``action.read_back`` and the
step runs; otherwise ``action.outcome_unknown`` with the evidence and an escalation
(``outcome_unknown``) ask a human, and the marker records ``unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import Any

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Escalation, Reason
from receiver.errors import StateError
from receiver.flow.escalation import Case, Escalations
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import Hold, Settled, StepRun
from receiver.flow.steps import PreparedStep, StepFailed
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import StepMark, StepState
from remediations.base import ReadBack, RemediationError, Result

_log = structlog.get_logger("remediator.once")
_REMEMBERED = 4096  # outcomes this process recorded, kept in case writing them to the store failed
_ATTEMPTS = 5  # a marker that keeps changing under a claim is read again this often


def marker_key(run: StepRun) -> str:
    """The marker's name: one per (decision, step)."""
    return f"{run.decision}\x1f{run.step.number}"


class ExecuteOnce:
    """The stage: hold the step's marker, or settle the step by what the marker says."""

    def __init__(self, settings: Settings, *, store: StateStore, audit: AuditLog, clock: Clock,
                 escalations: Escalations, owner: str) -> None:
        self.ttl = settings.guards.dedup_ttl.total_seconds()
        self.store = store
        self._audit = audit
        self._clock = clock
        self._escalations = escalations
        self._owner = owner
        self.running: dict[str, str] = {}  # marker -> holder, for this process's runs at work
        self.taken_from: dict[str, str] = {}
        """Run -> the holder whose marker it took over: a run that can no longer act, whose target
        lock it takes too (``receiver.flow.guards.lock``)."""
        self._ended: OrderedDict[str, StepMark] = OrderedDict()  # holder -> its recorded outcome

    async def enter(self, run: StepRun) -> Hold:
        try:
            return await self._enter(run)
        except BaseException:  # settled, stopped or failed here: no lock to take over
            self.taken_from.pop(run.run, None)
            raise

    async def _enter(self, run: StepRun) -> Hold:
        key = marker_key(run)
        if key in self.running:
            self._stop(run, Reason.STEP_RUNNING, "another worker of this process is running it now; that "
                                                 "run records its outcome")
        holder = self.holder(run)
        mine = StepMark(StepState.CLAIMED, holder, self._clock.now())
        for _ in range(_ATTEMPTS):
            won, there = await self.store.mark_step(key, mine, ttl=self.ttl, if_absent=True,
                                                    if_claimed=True)
            if won:
                if there is not None:  # a run that sent nothing (died, or waits to retry): its lock goes too
                    self.taken_from[run.run] = there.holder
                return await self._held(run, key, holder)
            if there is None:
                continue  # given back meanwhile
            if there.state is StepState.SENDING and there.holder in self.running.values():
                self._stop(run, Reason.STEP_RUNNING, "a worker of this process is running it now; that run "
                                                     "records its outcome")
            if there.state is StepState.SENDING and there.holder in self._ended:
                there = await self._rewrite(key, self._ended[there.holder])  # its outcome is known here
            if there.state is StepState.DONE:
                self._settle_done(run, there)
            if there.state is StepState.SENDING and await self._take_over(key, there, holder):
                self.taken_from[run.run] = there.holder
                return await self._resolve(run, key, there, holder)
        raise StateError(f"the execute-once marker of {key!r} kept changing; taken up again later")

    async def _held(self, run: StepRun, key: str, holder: str) -> Hold:
        """This run holds the step (nothing sent). A marker of the version before states (a dedup
        claim ``exec…``) means a run of that version started it: its outcome is unknown."""
        if await self.store.claimed(f"exec\x1f{key}"):
            earlier = StepMark(StepState.SENDING, "an earlier version of remediator", 0.0)
            await self.store.mark_step(key, StepMark(StepState.SENDING, holder, 0.0), ttl=self.ttl,
                                        if_holder=holder)
            return await self._resolve(run, key, earlier, holder, read=False)
        self.running[key] = holder
        return _Marked(self, key, holder, run.run)

    def holder(self, run: StepRun) -> str:
        return run.holder(self._owner)

    def forget(self, key: str, run: str) -> None:
        self.running.pop(key, None)
        self.taken_from.pop(run, None)

    async def _take_over(self, key: str, there: StepMark, holder: str) -> bool:
        """Hold a ``sending`` marker whose run is gone, to resolve it (one resolver, however many try)."""
        taken = StepMark(StepState.SENDING, holder, there.since, evidence={"taken_over_from": there.holder})
        won, _ = await self.store.mark_step(key, taken, ttl=self.ttl, if_holder=there.holder)
        return won

    async def _resolve(self, run: StepRun, key: str, there: StepMark, holder: str, *,
                       read: bool = True) -> Hold:
        """A request of this step went out and its outcome was lost: read the target back, or ask a human."""
        step = run.step
        found = await _read_back(step, since=there.since) if read else None
        evidence: dict[str, Any] = {"marker": there.state.value, "holder": there.holder,
                                    "sending_since": there.since or None,
                                    "read_back": None if found is None else dict(found.evidence)}
        if found is not None and found.done is True:
            self._audit.record(AuditEvent.ACTION_SUCCEEDED, attempt=0, read_back=evidence,
                               result={"summary": "done, as read back from the target",
                                       "details": dict(found.evidence)}, **step.fields())
            done = StepMark(StepState.DONE, holder, self._clock.now(), "succeeded", evidence)
            await self.record(key, done, holder)
            raise Settled(Result("done before a restart, as read back from the target", dict(found.evidence)))
        if found is not None and found.done is False and (step.action.execute_is_idempotent
                                                          or not step.plan.destructive):
            self._audit.record(AuditEvent.ACTION_READ_BACK, found="not_done", read_back=evidence,
                               **step.fields())
            won, _ = await self.store.mark_step(key, StepMark(StepState.CLAIMED, holder, self._clock.now()),
                                                 ttl=self.ttl, if_holder=holder)
            if won:
                self.running[key] = holder
                return _Marked(self, key, holder, run.run)
        why = ("the target, read back, could not tell whether it took effect" if found is not None
               else "this action cannot read its target back")
        detail = (f"step {step.number} ({step.action.name}) was sending when its run stopped "
                  f"({there.holder}); {why}: it is not run again, a human is asked")
        self._audit.record(AuditEvent.ACTION_OUTCOME_UNKNOWN, reason=Reason.OUTCOME_UNKNOWN, detail=detail,
                           evidence=evidence, **step.fields())
        with contextlib.suppress(AuditError):
            await self._audit.sync()
        alert = step.ctx.alert
        await self._escalations.send(Case(
            reason=Escalation.OUTCOME_UNKNOWN, key=key, detail=detail,
            about={"decision": run.decision}, rule=run.rule.name, priority=step.priority,
            alertname=alert.name, decision=run.decision, rung=run.rung, to=run.rule.escalate_to,
            fields={"step": str(step.number), "action": step.action.name,
                    "target": step.ctx.target_name or "", "sending_since": str(there.since or "unknown"),
                    "holder": there.holder},
            headline=f"outcome unknown: {step.action.name} on {step.subject}"))
        await self.record(key, StepMark(StepState.DONE, holder, self._clock.now(), "unknown", evidence),
                          holder)
        raise Blocked(Guard.EXECUTE_ONCE, Reason.OUTCOME_UNKNOWN, detail)

    def _settle_done(self, run: StepRun, there: StepMark) -> None:
        """The step ran to its end before: succeeded, it is skipped and the decision goes on."""
        step = run.step
        self._audit.record(AuditEvent.ACTION_SKIPPED, reason=Reason.ALREADY_DONE, outcome=there.outcome,
                           done_at=there.since, **step.fields())
        if there.outcome == "succeeded":
            raise Settled(Result(f"done before (step {step.number}); not run again", {"already_done": True}))
        raise Blocked(Guard.EXECUTE_ONCE, Reason.ALREADY_DONE,
                      f"step {step.number} ({step.action.name}) ran before and ended {there.outcome}; that "
                      "outcome is in the audit log, so it is not run again")

    def _stop(self, run: StepRun, reason: Reason, why: str) -> None:
        self._audit.record(AuditEvent.ACTION_SKIPPED, reason=reason, **run.step.fields())
        raise Blocked(Guard.EXECUTE_ONCE, reason, f"step {run.step.number} ({run.step.action.name}): {why}")

    async def _rewrite(self, key: str, done: StepMark) -> StepMark:
        """An outcome this process recorded but could not write: written now, if it can be."""
        with contextlib.suppress(StateError):
            await self.store.mark_step(key, done, ttl=self.ttl, if_holder=done.holder)
        return done

    async def record(self, key: str, done: StepMark, holder: str) -> None:
        """Record the outcome in the marker; remembered here too, should the store fail now."""
        self._ended[holder] = done
        while len(self._ended) > _REMEMBERED:
            self._ended.popitem(last=False)
        try:
            await self.store.mark_step(key, done, ttl=self.ttl, if_holder=holder)
        except StateError as exc:
            _log.error("once.outcome_unwritten", marker=key, outcome=done.outcome, error=str(exc))

    def now(self) -> float:
        return self._clock.now()


class _Marked(Hold):
    """A step this run holds: ``claimed``, then ``sending`` before each request, given back when
    nothing was sent, ``done`` with the outcome."""

    def __init__(self, once: ExecuteOnce, key: str, holder: str, run: str) -> None:
        self._once = once
        self.store = once.store
        self._key = key
        self._holder = holder
        self._run = run
        self._state: StepState | None = StepState.CLAIMED  # None: taken over by another run

    async def sending(self) -> None:
        mark = StepMark(StepState.SENDING, self._holder, self._once.now())
        try:
            won, _ = await self.store.mark_step(self._key, mark, ttl=self._once.ttl,
                                                 if_absent=True, if_holder=self._holder)
        except StateError:  # perhaps written: back to claimed if it was, then the item is taken up again
            await self._give_back(StepMark(StepState.CLAIMED, self._holder, self._once.now()))
            raise
        if not won:  # a run that took over while this one waited to retry carries it now
            self._state = None
            raise Blocked(Guard.EXECUTE_ONCE, Reason.TAKEN_OVER,
                          "another run of this step took it over before this one sent anything; that run "
                          "carries it, so this one stops")
        self._state = StepState.SENDING

    async def nothing_sent(self) -> None:
        """Back to ``claimed`` while the worker waits: should it die now, the next run takes over."""
        if self._state is StepState.SENDING:
            await self._give_back(StepMark(StepState.CLAIMED, self._holder, self._once.now()))
            self._state = StepState.CLAIMED

    async def give_back(self) -> None:
        await self._give_back(None)
        self._once.forget(self._key, self._run)

    async def finish(self, outcome: Result | StepFailed | None) -> None:
        self._once.forget(self._key, self._run)
        if outcome is None:  # stopped: a request in flight keeps ``sending`` (its outcome is unknown)
            if self._state is StepState.CLAIMED:
                await self._give_back(None)
            return
        ok = isinstance(outcome, Result)
        evidence = {} if ok else {"reason": outcome.reason.value}  # type: ignore[union-attr]
        done = StepMark(StepState.DONE, self._holder, self._once.now(), "succeeded" if ok else "failed",
                        evidence)
        await self._once.record(self._key, done, self._holder)

    async def _give_back(self, mark: StepMark | None) -> None:
        try:
            await self.store.mark_step(self._key, mark, ttl=self._once.ttl,
                                        if_holder=self._holder)
        except StateError as exc:  # it stays: after a crash, the next run resolves it as it finds it
            _log.warning("once.give_back_failed", marker=self._key, error=str(exc))


async def _read_back(step: PreparedStep, *, since: float) -> ReadBack | None:
    """What the action reads on its target, within the step's timeout; its failure is evidence too."""
    try:
        async with asyncio.timeout(step.timeout):
            return await step.action.read_back(step.ctx, step.params, step.plan, since=since)
    except TimeoutError:
        return ReadBack(None, {"error": f"no answer within {step.timeout}s"})
    except RemediationError as exc:
        return ReadBack(None, {"error": str(exc)})
