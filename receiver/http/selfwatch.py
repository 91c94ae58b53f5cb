"""remediator watching itself: the gauges of ``GET /metrics`` that say how the service is.

Called by the ``/metrics`` route (``receiver.http.handlers``) before each scrape is
rendered, so every value is read at scrape time: ready or not (and why, in ``/ready``),
the state store answering, the audit log writable, the pause and its reason, pending
approvals with the oldest one's age and those past their TTL, the circuit breaker of
every configured target, the work backlog and its oldest item's age, and the work deferred
behind an open circuit or a held lock. The pause,
approvals, circuits and backlog are read from the state store, so every replica reports
the same shared values (the alerting rules in ``deploy/prometheus/remediator-alerts.yml``
take ``max``). Reads are bounded by :data:`READ_TIMEOUT`; a store that does not answer
in time is reported as down, and the values read before stay as they were.
"""

from __future__ import annotations

import asyncio

from receiver.errors import StateError
from receiver.runtime import Runtime
from receiver.store.values import ApprovalStatus

READ_TIMEOUT = 2.0  # seconds for all the store reads of one scrape


async def refresh(runtime: Runtime) -> None:
    """Set the self-monitoring gauges of ``runtime.metrics`` from the service's state now."""
    m = runtime.metrics
    problems = await runtime.readiness()
    m.ready.set(0 if problems else 1)
    m.audit_up.set(0 if runtime.audit.problem is not None else 1)
    if runtime.store_waiter.problem is not None:
        m.state_store_up.set(0)
        return
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            await _read_store(runtime)
    except (StateError, TimeoutError):
        m.state_store_up.set(0)
        return
    m.state_store_up.set(1)


async def _read_store(runtime: Runtime) -> None:
    m, store, now = runtime.metrics, runtime.state, runtime.clock.now()
    pause = await store.get_pause()
    pending = await store.list_approvals([ApprovalStatus.PENDING])
    circuits = {target: await store.circuit(target) for target in sorted(runtime.settings.targets)}
    backlog = await store.backlog()
    oldest_work = await store.oldest_work()
    deferred = await store.deferred_count()
    m.paused.set(1 if pause is not None else 0)
    m.pause_duration.set(max(0.0, now - pause.since) if pause is not None else 0.0)
    m.pause_info.clear()
    if pause is not None:
        m.pause_info.labels(pause.source, pause.detail).set(1)
    m.approvals_pending.set(len(pending))
    m.approvals_oldest_age.set(max((now - a.created_at for a in pending), default=0.0))
    m.approvals_overdue.set(sum(1 for a in pending if a.expires_at <= now))
    for target, circuit in circuits.items():
        m.circuit_open.labels(target).set(1 if circuit.is_open(now) else 0)
    m.backlog.set(backlog)
    m.backlog_oldest_age.set(max(0.0, now - oldest_work) if oldest_work is not None else 0.0)
    m.deferred.set(deferred)
