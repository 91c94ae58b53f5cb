"""remediator's Grafana dashboard, built with grafana-foundation-sdk (Grafana's own builders).

``python deploy/grafana/dashboard.py`` writes ``deploy/grafana/remediator.json`` (import it
in Grafana, or let the compose ``grafana`` profile provision it) and the ConfigMap
``deploy/kubernetes/grafana-dashboard.yaml`` (for Grafana's dashboard sidecar).
``tests/deploy/test_self_monitoring.py`` checks that both files are what this builds and
that every query names only metrics a running remediator's ``/metrics`` exposes. The
panels follow the alerting rules in ``deploy/prometheus/remediator-alerts.yml``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

HERE = Path(__file__).resolve().parent
JSON_FILE = HERE / "remediator.json"
CONFIGMAP_FILE = HERE.parent / "kubernetes" / "grafana-dashboard.yaml"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
JOB = 'job=~"$job"'



def _rate(counter: str, by: str) -> str:
    return f"sum by ({by}) (rate({counter}{{{JOB}}}[5m]))"


def _quantile(q: float, histogram: str, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket{{{JOB}}}[5m])))"


# (title, unit, [(PromQL, legend)], description); stats first, then time series.
STATS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    ("Replicas up", "none", [(f"sum(up{{{JOB}}})", "up")], "remediator processes Prometheus scrapes"),
    ("Ready", "none", [(f"min(remediator_ready{{{JOB}}})", "ready")], "1 when every replica's /ready is 200"),
    ("Paused", "none", [(f"max(remediator_paused{{{JOB}}})", "paused")],
     "1 while automation is paused (kill switch or blast radius)"),
    ("Pending approvals", "none", [(f"max(remediator_approvals_pending{{{JOB}}})", "pending")],
     "approvals waiting for a human"),
    ("Open circuits", "none", [(f"sum(max by (target) (remediator_circuit_open{{{JOB}}}))", "open")],
     "targets whose circuit breaker refuses actions"),
    ("Rules loaded", "none", [(f"max(remediator_rules_loaded{{{JOB}}})", "rules")], "rules in force"),
]
SERIES: list[tuple[str, str, list[tuple[str, str]], str]] = [
    ("Alerts received /s", "reqps", [(_rate("remediator_alerts_received_total", "status"), "{{status}}")],
     "alerts in webhooks, by status"),
    ("Decisions /s", "reqps", [(_rate("remediator_decisions_total", "outcome"), "{{outcome}}")],
     "decisions by outcome"),
    ("Guard blocks /s", "reqps", [(_rate("remediator_guard_blocks_total", "guard"), "{{guard}}")],
     "decisions stopped by a guard"),
    ("Webhook latency", "s", [(_quantile(0.99, "remediator_webhook_duration_seconds"), "p99"),
                              (_quantile(0.5, "remediator_webhook_duration_seconds"), "p50")],
     "time to answer Alertmanager"),
    ("Requests refused /s", "reqps", [(_rate("remediator_requests_rejected_total", "reason"), "{{reason}}")],
     "requests refused before intake (503 included)"),
    ("Work backlog", "none", [(f"max(remediator_backlog{{{JOB}}})", "items"),
                              (f"sum(remediator_queue_depth{{{JOB}}})", "in process, waiting for a worker")],
     "work queued or being worked on (shared), and waiting in the replicas"),
    ("Oldest work item", "s", [(f"max(remediator_backlog_oldest_age_seconds{{{JOB}}})", "age")],
     "how long the oldest queued work has waited"),
    ("Approvals", "none", [(f"max(remediator_approvals_pending{{{JOB}}})", "pending"),
                           (f"max(remediator_approvals_overdue{{{JOB}}})", "past their TTL")],
     "pending approvals, and those past their TTL"),
    ("Oldest pending approval", "s",
     [(f"max(remediator_approvals_oldest_pending_age_seconds{{{JOB}}})", "age")],
     "how long the oldest approval has waited"),
    ("Pause", "s", [(f"max by (source, reason) (remediator_pause_info{{{JOB}}} * on (instance) "
                     f"group_left remediator_pause_duration_seconds{{{JOB}}})", "{{source}}: {{reason}}")],
     "how long automation has been paused, with the pause's source and reason"),
    ("Circuit breakers", "none", [(f"max by (target) (remediator_circuit_open{{{JOB}}})", "{{target}}")],
     "1 while a target's circuit is open"),
    ("Action duration p95", "s",
     [(_quantile(0.95, "remediator_action_duration_seconds", "action"), "{{action}}")],
     "time an action's execute took"),
    ("Failures", "none",
     [(f"min by (instance) (remediator_state_store_up{{{JOB}}})", "state store up {{instance}}"),
      (f"min by (instance) (remediator_audit_up{{{JOB}}})", "audit up {{instance}}"),
      (f"sum by (notifier) (increase(remediator_notifier_failures_total{{{JOB}}}[15m]))",
       "notifier {{notifier}} failures")],
     "state store and audit log up (1) or failing (0); notices notifiers did not take"),
    ("Escalations /h", "none", [(f"sum by (reason) (increase(remediator_escalations_total{{{JOB}}}[1h]))",
                                 "{{reason}}")], "escalations sent, by reason"),
    ("Rules reload", "none", [(f"min(remediator_rules_last_reload_successful{{{JOB}}})", "last reload ok")],
     "0 after a failed reload (the last good rules stay)"),
    ("Memory and CPU", "none", [(f"process_resident_memory_bytes{{{JOB}}} / 2^20", "RSS MiB {{instance}}"),
                                (f"rate(process_cpu_seconds_total{{{JOB}}}[5m])", "CPU {{instance}}")],
     "the standard process collector"),
]


def _targets(queries: list[tuple[str, str]]) -> list[prometheus.Dataquery]:
    return [prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
            .datasource(DATASOURCE) for i, (expr, legend) in enumerate(queries)]


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    board = (
        dashboard.Dashboard("remediator")
        .uid("remediator")
        .description("remediator watching itself: intake, decisions, guards, backlog, approvals, pause, "
                     "circuits, failures (alerts: deploy/prometheus/remediator-alerts.yml)")
        .tags(["remediator", "alertmanager"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(dashboard.QueryVariable("job").label("Job").datasource(DATASOURCE)
                       .query("label_values(remediator_build_info, job)").include_all(True).multi(True)
                       .all_value(".*"))
    )
    board = board.with_row(dashboard.Row("Now"))
    for title, unit, queries, description in STATS:
        panel = (stat.Panel().title(title).unit(unit).description(description).datasource(DATASOURCE)
                 .height(4).span(4))
        for target in _targets(queries):
            panel = panel.with_target(target)
        board = board.with_panel(panel)
    board = board.with_row(dashboard.Row("Over time"))
    for title, unit, queries, description in SERIES:
        series = (timeseries.Panel().title(title).unit(unit).description(description).datasource(DATASOURCE)
                  .height(8).span(12))
        for target in _targets(queries):
            series = series.with_target(target)
        board = board.with_panel(series)
    built: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board.build()))
    return built


def dashboard_json() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def configmap_yaml() -> str:
    """The ConfigMap Grafana's dashboard sidecar picks up (label ``grafana_dashboard``)."""
    configmap = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "remediator-dashboard", "namespace": "remediator",
                     "labels": {"app.kubernetes.io/name": "remediator", "grafana_dashboard": "1"}},
        "data": {"remediator.json": dashboard_json()},
    }
    header = "# Generated by deploy/grafana/dashboard.py (do not edit): remediator's Grafana dashboard\n"
    return header + yaml.safe_dump(configmap, sort_keys=False, width=1000)


def queries() -> list[str]:
    """Every PromQL expression the dashboard runs."""
    return [expr for _, _, exprs, _ in (*STATS, *SERIES) for expr, _ in exprs]


if __name__ == "__main__":
    JSON_FILE.write_text(dashboard_json())
    CONFIGMAP_FILE.write_text(configmap_yaml())
    print(f"wrote {JSON_FILE} and {CONFIGMAP_FILE}", file=sys.stderr)
