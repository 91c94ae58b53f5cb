"""The runtime: the one object that owns every part of a running service.

Built by ``receiver.http.app.create_app`` and stored under one app key; opened and closed by
the app's cleanup context. Handlers reach settings, rules, state, audit, queue,
workers and metrics through it; nothing is global.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket

import structlog
from prometheus_client import CollectorRegistry

from receiver.audit import AuditError, AuditEvent, AuditLog, SealKey
from receiver.auditconfig import AuditSettings
from receiver.clock import Clock
from receiver.errors import StateError
from receiver.flow.announce import Announcer
from receiver.flow.cancel import stop_tasks
from receiver.flow.completer import Completer
from receiver.flow.decide import Decide
from receiver.flow.deferral import Deferrals
from receiver.flow.enqueue import Enqueuer
from receiver.flow.escalation import Escalations
from receiver.flow.feeder import Feeder
from receiver.flow.guards.approvals import Approvals
from receiver.flow.guards.circuit import Breakers
from receiver.flow.guards.killswitch import KillSwitch
from receiver.flow.guards.pipeline import Pipeline
from receiver.flow.intake import Intake
from receiver.flow.policies import Policies
from receiver.flow.reload import RulesCoordinator
from receiver.flow.report import Report
from receiver.flow.resolution import Resolutions
from receiver.flow.steps import Steps
from receiver.flow.timers import Timers
from receiver.flow.verify import Verifier
from receiver.flow.workers import Executor
from receiver.flow.workqueue import WorkQueue
from receiver.metrics import Metrics
from receiver.settings import Settings
from receiver.store.connect import open_store
from receiver.store.protocol import StateStore
from receiver.store.waiting import StoreWaiter
from remediations.blocking import BlockingCalls
from remediations.registry import Registry

_log = structlog.get_logger("remediator")
_HOUSEKEEPING_EVERY = 10.0
_STOP_WITHIN = 10.0  # seconds for a task of ours to end once cancelled (cancelled again meanwhile)


def open_audit(config: AuditSettings, *, clock: Clock) -> AuditLog:
    """The audit log as ``audit:`` says: its path, sealing key (and older keys), rotation."""
    keys = [SealKey(s.reveal().encode(), s.source) for s in [*([config.key] if config.key else []),
                                                             *config.verify_keys]]
    rotate = config.rotate
    return AuditLog(config.path, clock=clock.now, key=keys[0] if config.key else None,
                    verify_keys=keys[1:] if config.key else (),
                    rotate_bytes=int(rotate.size) if rotate and rotate.size else None,
                    rotate_age=rotate.age.total_seconds() if rotate and rotate.age else None)


class Runtime:
    """Everything one ``remediator serve`` process runs on."""

    def __init__(self, settings: Settings, *, registry: Registry, clock: Clock,
                 metrics_registry: CollectorRegistry | None = None,
                 state: StateStore | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.metrics = Metrics(metrics_registry or CollectorRegistry())
        self.state = state or open_store(settings.state_url, clock=clock, prefix=settings.state_prefix)
        self.audit = open_audit(settings.audit_log, clock=clock)
        self.rules = RulesCoordinator(settings, registry=registry, metrics=self.metrics, clock=clock)
        self.queue = WorkQueue(settings.queue.workers * 4)
        self.metrics.watch_queue(self.queue.depth)
        self.report = Report(audit=self.audit, metrics=self.metrics)
        self.enqueue = Enqueuer(settings, store=self.state)
        self.announcer = Announcer(settings, audit=self.audit, on_failure=self.metrics.notifier_failed)
        for name in settings.notifiers:
            self.metrics.notifier_failures.labels(name)
        self.escalations = Escalations(settings, announcer=self.announcer, audit=self.audit,
                                       metrics=self.metrics)
        blast = self.escalations if settings.escalation.blast_radius else None
        self.killswitch = KillSwitch(store=self.state, audit=self.audit, announcer=self.announcer,
                                     clock=clock, escalations=blast)
        self.breakers = Breakers(settings, store=self.state, audit=self.audit, announcer=self.announcer,
                                 clock=clock, escalations=self.escalations)
        self.timers = Timers(store=self.state)
        self.verifier = Verifier(store=self.state, timers=self.timers, escalations=self.escalations,
                                 audit=self.audit, metrics=self.metrics, clock=clock, rules=self.rules,
                                 enqueue=self.enqueue)
        self.policies = Policies(settings, store=self.state, timers=self.timers, escalations=self.escalations,
                                 clock=clock, rules=self.rules)
        self.approvals = Approvals(settings, store=self.state, audit=self.audit, announcer=self.announcer,
                                   clock=clock, enqueue=self.enqueue.approved,
                                   on_declined=self.verifier.declined)
        self.resolutions = Resolutions(settings, store=self.state, approvals=self.approvals,
                                       verifier=self.verifier, audit=self.audit, clock=clock)
        self.intake = Intake(settings=settings, rules=self.rules, state=self.state, audit=self.audit,
                             metrics=self.metrics, report=self.report, enqueue=self.enqueue, clock=clock,
                             on_resolved=self.resolutions.close)
        self.completer = Completer(store=self.state, audit=self.audit, queue=self.queue,
                                   on_failure=lambda why: self.metrics.completion_failures.labels(why).inc())
        self.metrics.completions_pending.set_function(lambda: self.completer.pending)
        self.feeder = Feeder(store=self.state, queue=self.queue, consumer=self.consumer,
                             visibility=settings.queue.visibility_timeout.total_seconds(),
                             heartbeat=settings.queue.heartbeat.total_seconds(),
                             on_reclaimed=lambda whose, n: self.metrics.reclaimed.labels(whose).inc(n))
        self.pipeline = Pipeline(settings, store=self.state, audit=self.audit, clock=clock,
                                 escalations=self.escalations,
                                 killswitch=self.killswitch, breakers=self.breakers, approvals=self.approvals,
                                 policies=self.policies, owner=self.consumer)
        # actions' blocking SDK calls: threads of their own, so a slow backend never holds the audit's
        self.calls = BlockingCalls(settings.queue.sdk_threads, name="remediator-sdk")
        self.steps = Steps(settings, registry=registry, calls=self.calls, audit=self.audit,
                           report=self.report, clock=clock)
        self.executor = Executor(
            workers=settings.queue.workers, rules=self.rules, queue=self.queue, store=self.state,
            audit=self.audit, report=self.report, verifier=self.verifier, killswitch=self.killswitch,
            approvals=self.approvals, completer=self.completer,
            deferrals=Deferrals(settings, store=self.state, audit=self.audit, report=self.report,
                                escalations=self.escalations, clock=clock, approvals=self.approvals,
                                rules=self.rules),
            decide=Decide(rules=self.rules, pipeline=self.pipeline, steps=self.steps,
                          approvals=self.approvals, verifier=self.verifier))
        self._housekeeping: asyncio.Task[None] | None = None
        self.store_waiter = StoreWaiter(self.state, url=settings.state_url)
        self._connecting: asyncio.Task[None] | None = None
        self._working = False
        self._drained = False
        self.draining = False

    async def start(self) -> None:
        """Load rules (they must load), open the state store, take up unfinished work, start workers.

        A state store over the network that does not answer yet is waited for
        (``receiver.store.waiting``): the service listens, not ready, and takes up work once
        the store answers. A failed start closes what it opened: ``stop()`` is not called for it.
        """
        try:
            report = self.rules.load_now()
            if not await self.store_waiter.try_open():
                self._connecting = asyncio.create_task(self._start_when_reachable(report.rules),
                                                       name="remediator-state-wait")
                return
            await self._take_up(report.rules)
        except BaseException:
            await self._close_store_and_audit()
            raise

    async def _start_when_reachable(self, rules: int) -> None:
        while True:
            await self.store_waiter.until_open()
            try:
                await self._take_up(rules)
                return
            except StateError as exc:  # it went away again before work could be taken up
                await self.state.close()
                self.store_waiter.problem = f"not reachable yet, retrying: {exc}"

    async def _take_up(self, rules: int) -> None:
        """With the store open: record the start, take up unfinished work, start the workers."""
        self.audit.record(AuditEvent.ADMIN_STARTED, rules=rules, consumer=self.consumer,
                          dry_run=self.settings.dry_run, listen=self.settings.listen)
        await self.audit.sync()
        # One replica on SQLite: whatever another consumer holds is a dead process's.
        single = self.settings.state_url.startswith("sqlite:")
        idle = 0.0 if single else self.settings.queue.visibility_timeout.total_seconds()
        resumed = await self.feeder.resume_orphans(idle=idle)
        self.feeder.start()
        self.executor.start()
        self._housekeeping = asyncio.create_task(self._housekeep(), name="remediator-housekeeping")
        self._working = True
        _log.info("remediator.started", rules=rules, dry_run=self.settings.dry_run,
                  listen=self.settings.listen, audit=str(self.settings.audit),
                  state=self.settings.state_shown, resumed=len(resumed))

    async def _close_store_and_audit(self) -> None:
        await self.state.close()
        try:
            await self.audit.close()
        except AuditError as exc:
            _log.error("audit.close_failed", error=str(exc))

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(_HOUSEKEEPING_EVERY)
            try:
                await self.approvals.expire_due()
                await self.approvals.requeue_approved()
                await self.timers.fire_due()
            except (StateError, AuditError) as exc:
                _log.warning("housekeeping.failed", error=str(exc))

    def begin_drain(self) -> None:
        """Stop taking webhooks (they get 503 from now on)."""
        self.draining = True

    async def drain(self) -> None:
        """Stop intake and taking work; let running work finish within ``drain_timeout``. Once.

        ``receiver.http.server`` calls it while the listener is still open (webhooks answered 503
        with ``Retry-After``, ``/ready`` 503), then closes the listener; :meth:`stop` calls it too.
        Every task stopped here ends within a bound (``receiver.flow.cancel``).
        """
        self.begin_drain()
        if self._drained:
            return
        self._drained = True
        if self._connecting is not None:
            await stop_tasks([self._connecting], within=_STOP_WITHIN)
        if not self._working:
            return
        await self.feeder.stop()
        if self._housekeeping is not None:
            await stop_tasks([self._housekeeping], within=_STOP_WITHIN)
        timeout = self.settings.drain_timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout):
                await self.queue.wait_idle()
        except TimeoutError:
            _log.warning("remediator.drain_timeout", unfinished=self.queue.unfinished, timeout=timeout)

    async def stop(self) -> None:
        """Drain (:meth:`drain`, when serve has not already), flush, close.

        Work not finished stays in the state store's queue: taken up at the next start
        (SQLite) or by another replica at once (Redis: this process ends its heartbeat).
        """
        await self.drain()
        if not self._working:  # still waiting for the state store: nothing was taken up
            self.registry.close()
            self.calls.close()
            await self._close_store_and_audit()
            _log.info("remediator.stopped", unstarted=0)
            return
        unstarted = self.queue.drain_unstarted()
        await self.executor.stop()
        await self.feeder.retire()
        self.registry.close()
        self.calls.close()
        self.audit.record(AuditEvent.ADMIN_STOPPED, unstarted=len(unstarted),
                          detail="unfinished work stays queued in the state store")
        try:
            await self.audit.close()
        except AuditError as exc:
            _log.error("audit.close_failed", error=str(exc))
        await self.state.close()
        _log.info("remediator.stopped", unstarted=len(unstarted))

    async def readiness(self) -> list[str]:
        """Why the service is not ready (draining, no rules, store or audit failing); empty when ready."""
        problems = []
        if self.draining:
            problems.append("shutting down")
        if not self.rules.loaded:
            problems.append("rules not loaded")
        if self.store_waiter.problem is not None:
            problems.append(f"state store: {self.store_waiter.problem}")
        else:
            try:
                await self.state.ping()
            except StateError as exc:
                problems.append(f"state store: {exc}")
        if self.audit.problem is not None:
            problems.append(f"audit log: {self.audit.problem}")
        return problems
