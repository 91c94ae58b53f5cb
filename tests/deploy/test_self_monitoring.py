"""remediator watched by Prometheus and Grafana: the rules about itself pass ``promtool test
rules``, the dashboard is what grafana-foundation-sdk builds from ``deploy/grafana/dashboard.py``,
and every metric the rules and the dashboard name is one a real service's ``/metrics``
exposes. The Kubernetes PrometheusRule and dashboard ConfigMap carry the same content.
"""

from __future__ import annotations

import json
import re
import runpy
from typing import Any

import pytest
import yaml

from tests.conftest import HIGH_CPU_RULES, ClientFactory
from tests.deploy.test_deploy import DEPLOY, K8S, run, tool

RULES = DEPLOY / "prometheus" / "remediator-alerts.yml"
# Prometheus' own series for a scrape target, not exposed by the target
SYNTHETIC = {"up"}
METRIC = re.compile(r"\b(up|remediator_[a-z_]+|process_[a-z_]+|python_[a-z_]+)\b")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return runpy.run_path(str(DEPLOY / "grafana" / "dashboard.py"))


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def test_promtool_checks_and_tests_the_self_monitoring_rules() -> None:
    checked = run(tool("promtool"), "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(tool("promtool"), "test", "rules", str(DEPLOY / "prometheus" / "remediator-alerts.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_self_monitoring_alert_has_a_promtool_test() -> None:
    """No rule goes untested: each alert is expected to fire in at least one test case."""
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tests = yaml.safe_load((DEPLOY / "prometheus" / "remediator-alerts.test.yml").read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert alerts == fired


def test_the_dashboard_files_are_what_the_builder_makes(dashboard: dict[str, Any]) -> None:
    """deploy/grafana/remediator.json and the Kubernetes ConfigMap are the builder's output
    (run ``python deploy/grafana/dashboard.py`` after changing it)."""
    assert (DEPLOY / "grafana" / "remediator.json").read_text() == dashboard["dashboard_json"]()
    assert (K8S / "grafana-dashboard.yaml").read_text() == dashboard["configmap_yaml"]()
    model = json.loads(dashboard["dashboard_json"]())
    assert model["uid"] == "remediator"
    panels = [p for p in model["panels"] if p["type"] != "row"]
    assert len(panels) == len(dashboard["queries"]()) - sum(len(p["targets"]) - 1 for p in panels)
    assert all(t["datasource"]["uid"] == "${datasource}" for p in panels for t in p["targets"])


def test_the_prometheusrule_carries_the_self_monitoring_rules() -> None:
    (rule,) = list(yaml.safe_load_all((K8S / "prometheusrule.yaml").read_text()))
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    kustomized = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert {"prometheusrule.yaml", "grafana-dashboard.yaml"} <= set(kustomized)


async def exposed_names(make_client: ClientFactory, make_settings: Any) -> set[str]:
    """The sample names a fresh service's /metrics offers (counters' and histograms' derived
    names from their TYPE lines, since a labelled one has no sample before its first use)."""
    client = await make_client(make_settings(rules=HIGH_CPU_RULES))
    text = await (await client.get("/metrics")).text()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            derived = {"counter": (f"{name.removesuffix('_total')}_total",),
                       "histogram": (f"{name}_bucket", f"{name}_sum", f"{name}_count")}
            names |= {name, *derived.get(kind, ())}
    return names


async def test_rules_and_dashboard_name_only_metrics_that_metrics_exposes(
        make_client: ClientFactory, make_settings: Any, dashboard: dict[str, Any]) -> None:
    exposed = await exposed_names(make_client, make_settings) | SYNTHETIC
    sources = (("rules", rule_exprs()), ("dashboard", dashboard["queries"]()))
    named = {(where, m) for where, exprs in sources for expr in exprs for m in METRIC.findall(expr)}
    assert len({m for _, m in named}) > 20  # the regular expression does find them
    missing = sorted((where, m) for where, m in named if m not in exposed)
    assert missing == []


def test_the_name_check_catches_a_misspelt_metric() -> None:
    assert METRIC.findall('max(remediator_backlog_oldest_age_second{job=~"$job"})') == [
        "remediator_backlog_oldest_age_second"]
