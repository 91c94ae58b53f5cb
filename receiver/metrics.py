"""The service's Prometheus metrics, on a registry passed in (never the global one).

Built by ``receiver.runtime``; updated by handlers, intake, workers and the rules
coordinator; exposed at ``GET /metrics``. Label values come from the shared enums in
``receiver.decisions`` so metrics, logs and audit use the same words. The registry also
carries ``remediator_build_info`` and the standard ``process_*`` and ``python_*`` series,
and the gauges by which remediator watches itself, set at each scrape by
``receiver.http.selfwatch`` (``deploy/prometheus/remediator-alerts.yml`` alerts on them).
"""

from __future__ import annotations

import platform
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from receiver import version
from receiver.decisions import CompletionFailure, Escalation, Outcome, Reason, Rejection

_RESOLVE_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Every metric, created once on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # The standard process_* and python_* series, on this registry (the default
        # registry's own collectors are never used: one registry object, no globals).
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.build_info = Gauge(
            "remediator_build_info", "Always 1: the running version of remediator and of Python",
            ["version", "python_version"], registry=registry,
        )
        self.build_info.labels(version(), platform.python_version()).set(1)
        self.alerts_received = Counter(
            "remediator_alerts_received", "Alerts received by webhook, by alert status",
            ["status"], registry=registry,
        )
        self.rule_matches = Counter(
            "remediator_rule_matches", "Alerts matched, by rule", ["rule"], registry=registry
        )
        self._decided: dict[tuple[Outcome, Reason], Counter] = {}
        self.decisions = Counter(
            "remediator_decisions", "Decisions by outcome and reason",
            ["outcome", "reason"], registry=registry,
        )
        self.guard_blocks = Counter(
            "remediator_guard_blocks", "Decisions stopped by a guard", ["guard"], registry=registry
        )
        self.deferrals = Counter(
            "remediator_deferrals", "Decisions a transient guard sent back to wait, by guard and reason",
            ["guard", "reason"], registry=registry,
        )
        self.requests_rejected = Counter(
            "remediator_requests_rejected", "Requests refused before intake, by reason",
            ["reason"], registry=registry,
        )
        self.webhook_latency = Histogram(
            "remediator_webhook_duration_seconds", "Time to answer a webhook request",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.action_duration = Histogram(
            "remediator_action_duration_seconds", "Time an action's execute took",
            ["action", "outcome"], registry=registry,
        )
        self.queue_depth = Gauge(
            "remediator_queue_depth", "Decisions waiting for a worker", registry=registry
        )
        self.rules_loaded = Gauge("remediator_rules_loaded", "Rules in force", registry=registry)
        self.reload_ok = Gauge(
            "remediator_rules_last_reload_successful",
            "Whether the last rules (re)load succeeded", registry=registry,
        )
        self.reload_timestamp = Gauge(
            "remediator_rules_last_reload_success_timestamp_seconds",
            "When rules last loaded successfully", registry=registry,
        )
        self.verifications = Counter(
            "remediator_verifications", "Verified remediations by outcome (succeeded, failed, "
            "resolved_late, skipped)", ["outcome"], registry=registry,
        )
        self.time_to_resolve = Histogram(
            "remediator_verify_time_to_resolve_seconds",
            "From a remediation's success to its alert's resolution, when within the window",
            ["rule"], buckets=_RESOLVE_BUCKETS, registry=registry,
        )
        self.escalations = Counter(
            "remediator_escalations", "Escalations sent, by reason", ["reason"], registry=registry
        )
        # remediator watching itself: set at each scrape by receiver.http.selfwatch.refresh
        self.ready = Gauge("remediator_ready", "1 when GET /ready answers 200", registry=registry)
        self.state_store_up = Gauge(
            "remediator_state_store_up", "1 when the state store answered at this scrape", registry=registry)
        self.audit_up = Gauge(
            "remediator_audit_up", "1 while the audit log is writable (no write or fsync failed)",
            registry=registry)
        self.paused = Gauge(
            "remediator_paused", "1 while automation is paused (kill switch or blast radius)",
            registry=registry)
        self.pause_duration = Gauge(
            "remediator_pause_duration_seconds", "How long automation has been paused (0 when it is not)",
            registry=registry)
        self.pause_info = Gauge(
            "remediator_pause_info", "1 for the pause in force: its source (admin, blast_radius) and reason",
            ["source", "reason"], registry=registry)
        self.approvals_pending = Gauge(
            "remediator_approvals_pending", "Approvals waiting for a human", registry=registry)
        self.approvals_oldest_age = Gauge(
            "remediator_approvals_oldest_pending_age_seconds", "Age of the oldest pending approval (0: none)",
            registry=registry)
        self.approvals_overdue = Gauge(
            "remediator_approvals_overdue", "Pending approvals past their TTL (housekeeping expires them)",
            registry=registry)
        self.circuit_open = Gauge(
            "remediator_circuit_open", "1 while a configured target's circuit breaker is open", ["target"],
            registry=registry)
        self.backlog = Gauge(
            "remediator_backlog", "Work queued or being worked on in the state store (every replica's)",
            registry=registry)
        self.backlog_oldest_age = Gauge(
            "remediator_backlog_oldest_age_seconds", "How long the oldest queued work has waited (0: none)",
            registry=registry)
        self.deferred = Gauge(
            "remediator_deferred", "Work waiting in the state store behind an open circuit or a held "
            "target lock (every replica's)", registry=registry)
        self.completions_pending = Gauge(
            "remediator_completions_pending", "Work finished here whose removal from the state store "
            "failed and is being retried (never run again)", registry=registry)
        self.completion_failures = Counter(
            "remediator_completion_failures", "Failed attempts to remove finished work from the state "
            "store, by reason", ["reason"], registry=registry)
        self.reclaimed = Counter(
            "remediator_work_reclaimed", "Work taken up again: from a replica that died or stopped "
            "touching it (others), or this process's own that nothing here held (own)", ["whose"],
            registry=registry)
        self.notifier_failures = Counter(
            "remediator_notifier_failures", "Notices (approvals, pauses, escalations) a notifier refused",
            ["notifier"], registry=registry)
        self.connections_open = Gauge(
            "remediator_http_connections", "Client connections held now", registry=registry
        )
        self.connections_closed = Counter(
            "remediator_http_connections_closed", "Client connections serve closed, by why (header_timeout, "
            "idle_timeout, send_timeout, evicted, refused)", ["reason"], registry=registry,
        )
        # Children looked up once: ``.labels()`` costs a lock and a dict per call, on every request.
        self.rejected = {reason: self.requests_rejected.labels(reason.value) for reason in Rejection}
        for why in Escalation:
            self.escalations.labels(why.value)
        for failure in CompletionFailure:
            self.completion_failures.labels(failure.value)
        for whose in ("own", "others"):
            self.reclaimed.labels(whose)

    def decided(self, outcome: Outcome, reason: Reason) -> None:
        child = self._decided.get((outcome, reason))
        if child is None:  # ``labels()`` locks and checks its values on every call: looked up once
            child = self._decided[(outcome, reason)] = self.decisions.labels(outcome.value, reason.value)
        child.inc()

    def notifier_failed(self, notifier: str) -> None:
        self.notifier_failures.labels(notifier).inc()

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)
