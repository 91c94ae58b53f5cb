"""The runtime: the one object that owns every part of a running service.

Built by ``receiver.app.create_app`` and stored under one app key; opened and closed by
the app's cleanup context. Handlers reach settings, rules, state, audit, queue,
workers and metrics through it; nothing is global.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import CollectorRegistry

from receiver.audit import AuditError, AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Outcome, Reason
from receiver.errors import StateError
from receiver.executor import Executor
from receiver.intake import Intake
from receiver.metrics import Metrics
from receiver.reload import RulesCoordinator
from receiver.settings import Settings
from receiver.state import StateStore, open_state_store
from receiver.workqueue import WorkQueue
from remediations.registry import Registry

_log = structlog.get_logger("remediator")


class Runtime:
    """Everything one ``remediator serve`` process runs on."""

    def __init__(self, settings: Settings, *, registry: Registry, clock: Clock,
                 metrics_registry: CollectorRegistry | None = None,
                 state: StateStore | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.metrics = Metrics(metrics_registry or CollectorRegistry())
        self.state = state or open_state_store(settings.state, clock=clock)
        self.audit = AuditLog(settings.audit, clock=clock.now)
        self.rules = RulesCoordinator(settings, registry=registry, metrics=self.metrics, clock=clock)
        self.queue = WorkQueue(settings.queue.size)
        self.metrics.watch_queue(self.queue.depth)
        self.intake = Intake(settings=settings, rules=self.rules, state=self.state,
                             audit=self.audit, queue=self.queue, metrics=self.metrics, clock=clock)
        self.executor = Executor(settings=settings, registry=registry, queue=self.queue,
                                 audit=self.audit, metrics=self.metrics, clock=clock)
        self.draining = False

    async def start(self) -> None:
        """Load rules (they must load), open the state store, start the workers.

        A failed start closes what it opened: ``stop()`` is not called for it.
        """
        try:
            report = self.rules.load_now()
            await self.state.open()
            self.audit.record(AuditEvent.ADMIN_STARTED, rules=report.rules,
                              dry_run=self.settings.dry_run, listen=self.settings.listen)
            await self.audit.sync()
        except BaseException:
            await self.state.close()
            try:
                await self.audit.close()
            except AuditError as exc:
                _log.error("audit.close_failed", error=str(exc))
            raise
        self.executor.start()
        _log.info("remediator.started", rules=report.rules, dry_run=self.settings.dry_run,
                  listen=self.settings.listen, audit=str(self.settings.audit),
                  state=self.settings.state)

    def begin_drain(self) -> None:
        """Stop taking webhooks (they get 503 from now on)."""
        self.draining = True

    async def stop(self) -> None:
        """Drain within the bounded time, give back unstarted work, flush, close."""
        self.begin_drain()
        timeout = self.settings.drain_timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout):
                await self.queue.wait_idle()
        except TimeoutError:
            _log.warning("remediator.drain_timeout", unfinished=self.queue.unfinished,
                         timeout=timeout)
        unstarted = self.queue.drain_unstarted()
        if unstarted:
            # Give the dedup claims back: Alertmanager's next re-send will do this work.
            try:
                await self.state.release([d.dedup_key for d in unstarted])
            except StateError as exc:
                _log.error("state.release_failed", error=str(exc))
            for d in unstarted:
                self.metrics.decided(Outcome.FAILED, Reason.SHUTDOWN)
                self.audit.record(AuditEvent.DECISION_FAILED, decision=d.id, rule=d.rule.name,
                                  fingerprint=d.alert.fingerprint, outcome=Outcome.FAILED,
                                  reason=Reason.SHUTDOWN,
                                  detail="not started before shutdown; released for the next re-send")
        await self.executor.stop()
        self.audit.record(AuditEvent.ADMIN_STOPPED, unstarted=len(unstarted))
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
        try:
            await self.state.ping()
        except StateError as exc:
            problems.append(f"state store: {exc}")
        if self.audit.problem is not None:
            problems.append(f"audit log: {self.audit.problem}")
        return problems
