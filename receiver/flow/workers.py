"""The workers: tasks that carry each work item to its end, every end reported, and the completer.

Started and stopped by ``receiver.runtime``; items come from the local buffer the feeder
fills (``receiver.flow.workqueue``). Each item is read back (``receiver.flow.codec``) and
handed to ``receiver.flow.decide``; however it ends — run, planned, waiting for an
approval, stopped by a guard, failed, crashed (named by its rule and alert, an approved
plan's read back from its approval) — the end is reported once (``receiver.flow.report``):
a climbed rung that stopped is told to ``receiver.flow.verify`` (its ladder stops), the
blast radius stopping one pauses automation, and how an approved plan's run ended is told
to ``receiver.flow.guards.approvals`` (:meth:`Approvals.ran`: Slack shows the result). A
decision (or approved plan) an open circuit or a held lock stopped is deferred instead
(``receiver.flow.deferral``: it leaves the queue to wait in the store, or, past its bound,
ends escalated), and one that comes back from waiting ends at once if its alert resolved
meanwhile. Every finished item goes to the completer (``receiver.flow.completer``), which
removes it from the store, retried until that succeeds; an item the store failed on while
it ran is tried again after a pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial

import structlog

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.decisions import Decision, Guard, Outcome, Reason
from receiver.errors import StateError
from receiver.flow.cancel import stop_tasks
from receiver.flow.codec import ApprovedWork, Deferral, RuleGone, read_work
from receiver.flow.completer import Completer
from receiver.flow.decide import Decide
from receiver.flow.deferral import Deferrals, Wait
from receiver.flow.guards.approvals import Approvals
from receiver.flow.guards.killswitch import KillSwitch
from receiver.flow.reload import RulesCoordinator
from receiver.flow.report import Ending, Report, Stopped
from receiver.flow.verify import Verifier
from receiver.flow.workqueue import WorkQueue
from receiver.store.protocol import StateStore
from receiver.store.values import WorkItem

_log = structlog.get_logger("remediator.executor")
_STATE_RETRY = 5.0  # seconds before work stopped by a state store failure is tried again
_STOP_WITHIN = 10.0  # seconds for the workers to end once cancelled (cancelled again meanwhile)


class Executor:
    """Runs work items taken from the local buffer by ``workers`` concurrent tasks."""

    def __init__(self, *, workers: int, rules: RulesCoordinator, queue: WorkQueue, store: StateStore,
                 audit: AuditLog, report: Report, decide: Decide, verifier: Verifier,
                 killswitch: KillSwitch, approvals: Approvals, completer: Completer,
                 deferrals: Deferrals | None = None) -> None:
        self._workers = workers
        self._rules = rules
        self._queue = queue
        self._store = store
        self._audit = audit
        self._report = report
        self._decide = decide
        self._verifier = verifier
        self._killswitch = killswitch
        self._approvals = approvals
        self._completer = completer
        self._deferrals = deferrals
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for n in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"remediator-worker-{n}"))
        self._completer.start()

    async def stop(self) -> None:
        left = await stop_tasks(self._tasks, within=_STOP_WITHIN)
        if left:
            _log.error("executor.stop_unfinished", tasks=[task.get_name() for task in left])
        self._tasks.clear()
        await self._completer.stop()

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            finished = False
            try:
                finished = await self.run_item(item)
            except asyncio.CancelledError:
                self._report.ended(Ending.interrupted(), decision=item.id)
                self._queue.done(item)
                raise
            except Exception:  # a bug must not kill the worker; it is logged and audited
                _log.exception("executor.crashed", decision=item.id)
                self._report.ended(Ending.crashed(_names(item)), decision=item.id)
                finished = True
            if finished:
                self._completer.finished(item)
            else:  # the store failed: this process tries it again after a pause (it still holds it)
                self._tasks.append(asyncio.create_task(self._retry_later(item)))
            # A turn for the rest of the loop between items: an item that never waits (a guard
            # stops it, a dry run plans it) would otherwise run straight into the next while
            # webhook requests wait (the storm's p99 ack 226 -> 156 ms with this alone).
            await asyncio.sleep(0)

    async def _retry_later(self, item: WorkItem) -> None:
        try:
            await asyncio.sleep(_STATE_RETRY)
            await self._queue.requeue(item)
        finally:
            self._tasks.remove(asyncio.current_task())  # type: ignore[arg-type]

    async def _wait_or_end(self, item: WorkItem, d: Decision | None, approved: ApprovedWork | None,
                           ending: Ending) -> Ending | None:
        """Defer ``item`` when its stop is transient (None), or how it ends: as it was stopped, or
        given up past its bound (escalated: a decision's climbed rung as its ladder stopping)."""
        assert self._deferrals is not None
        verdict = self._deferrals.plan(ending, item)
        if verdict is None:
            return ending
        d = d if approved is None else await self._deferrals.approved(approved)
        if d is None:  # an approved plan whose approval or rule is gone: it ends as it was stopped
            return ending
        if isinstance(verdict, Wait):
            await self._deferrals.defer(item, d, ending, verdict)
            return None
        return await self._deferrals.give_up(d, ending, verdict, escalate=d.rung == 0 or approved is not None)

    async def run_item(self, item: WorkItem) -> bool:
        """Run one item; False when the state store failed and the item should be taken again."""
        try:
            work = read_work(item, self._rules.index)
        except RuleGone as gone:
            self._report.ended(Ending.rule_gone(gone.rule), decision=item.id)
            return True
        if isinstance(work, ApprovedWork):
            ran = partial(self._approvals.ran, work.approval)
            back = await self._back(item, work)
            if isinstance(back, Ending):  # its alert resolved while it waited: the approver hears
                await ran(back.outcome, back.reason, back.detail)
                return True
            if back is False:
                return False
            return await self._carry(work.decision, None, self._decide.approved(work), ended=ran,
                                     approval=work.approval, item=item, approved=work)
        if item.deliveries > 1:
            self._audit.record(AuditEvent.DECISION_RESUMED, decision=item.id, rule=work.rule.name,
                               fingerprint=work.alert.fingerprint, deliveries=item.deliveries)
        back = await self._back(item, work)
        if back is not True:
            return back is not False
        return await self.run(work, item)

    async def _back(self, item: WorkItem, work: Decision | ApprovedWork) -> Ending | bool:
        """A deferred item back from waiting: its ending (reported) when its alert resolved meanwhile;
        True to run it (or when it never waited), False when the store failed."""
        if self._deferrals is None or Deferral.of(item) is None:
            return True
        d = work if isinstance(work, Decision) else None
        try:
            if isinstance(work, ApprovedWork):
                d = await self._deferrals.approved(work)
            resolved = None if d is None else await self._deferrals.resolved(item, d)
        except StateError as exc:
            self._report.ended(Ending.unavailable(exc), decision=item.id, d=d)
            return False
        if resolved is None:
            return True
        self._report.ended(resolved, decision=d.id if d is not None else item.id, d=d)
        return resolved

    async def run(self, d: Decision, item: WorkItem | None = None) -> bool:
        """Carry one decision to its end (``item``: the work that carries it, which a transient
        guard defers); False when the state store failed."""
        return await self._carry(d.id, d, self._decide.decision(d), item=item)

    async def _carry(self, decision: str, d: Decision | None, work: Awaitable[Ending], *,
                     ended: Callable[[Outcome, Reason, str], Awaitable[None]] | None = None,
                     approval: str | None = None, item: WorkItem | None = None,
                     approved: ApprovedWork | None = None) -> bool:
        """Await ``work`` and report how it ended (``d``: the decision's names, when known; else
        ``approval``'s, read back); ``ended`` is told too (not when the store failed: the
        item is taken up again). A transient stop of ``item``'s decision (or ``approved`` plan)
        defers it: nothing is reported as its end."""
        bind = {"decision": decision} | ({} if d is None else {"rule": d.rule.name,
                                                                "fingerprint": d.alert.fingerprint})
        tokens = structlog.contextvars.bind_contextvars(**bind)  # reset on the way out, as
        try:  # bound_contextvars would (its context manager costs more than the binding)
            try:
                ending = await work
            except Stopped as stop:
                ending = stop.ending
                if item is not None and self._deferrals is not None:
                    try:
                        waits = await self._wait_or_end(item, d, approved, ending)
                    except StateError as exc:
                        self._report.ended(Ending.unavailable(exc), decision=decision, d=d)
                        return False
                    if waits is None:
                        return True  # not an end: it comes back when due
                    ending = waits
                if d is not None and stop.stops_ladder:
                    await self._verifier.stopped(d, reason=ending.reason, detail=ending.detail)
                if ending.guard is Guard.BLAST_RADIUS:  # it stays paused until an admin resumes
                    try:
                        await self._killswitch.pause(actor="system", detail=ending.detail,
                                                     source="blast_radius")
                    except (StateError, AuditError) as exc:  # the next decision trips it again
                        _log.error("blast_radius.pause_failed", error=str(exc))
            except StateError as exc:
                self._report.ended(Ending.unavailable(exc), decision=decision, d=d)
                return False
            except Exception:  # a bug: the decision ends failed, named, and the worker goes on
                _log.exception("executor.crashed")
                ending = Ending.crashed({})
            if d is None and approval is not None and ending.event is not None:
                # an approved plan's ending names its rule and alert as a decision's does
                ending = replace(ending, extra={**await self._approval_names(approval), **ending.extra})
            self._report.ended(ending, decision=decision, d=d)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        if ended is not None:
            await ended(ending.outcome, ending.reason, ending.detail)
        return True

    async def _approval_names(self, approval: str) -> dict[str, str]:
        """The rule and alert of an approved plan, read back from its approval."""
        try:
            found = await self._approvals.get(approval)
        except Exception:  # the record is written without them rather than not at all
            return {}
        return {} if found is None else {"rule": found.rule, "fingerprint": found.fingerprint}


def _names(item: WorkItem) -> dict[str, str]:
    """The rule and alert a work item names, as far as it can be read (a crash reading it)."""
    p = item.payload
    alert = p.get("alert") if isinstance(p.get("alert"), dict) else {}
    names = {"rule": p.get("rule"), "fingerprint": alert.get("fingerprint") if alert else None}
    return {k: v for k, v in names.items() if isinstance(v, str)}
