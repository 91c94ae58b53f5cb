"""The shipped rule pack: it loads, every captured alert meets the right rule, and each
runbook alert gets the decision the runbook asks for (rule, priority, approval, params)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from remediations.registry import default_registry
from rules.alert import Alert
from rules.engine import RuleIndex
from rules.loader import default_pack_paths, load_rules
from rules.model import RuleSet
from rules.priority import PriorityPolicy, classify

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "alertmanager"

CONCERNS = ["availability", "cpu", "disk", "errors", "latency", "oom", "postgres-connections",
            "postgres-queries", "queues", "redis"]

EXPECTED = {  # alertname of a captured alert -> the pack rule a firing alert of that name meets
    "HighCPU": "high-cpu-scale-up",
    "HighErrorRate": "high-error-rate-diagnose",
    "PostgresSlowQueries": "postgres-slow-queries-cancel",
    "ContainerOOMKilled": "oom-killed-rollout-restart",
    "RedisMemoryHigh": "redis-memory-high-flush",
}

K8S = {"namespace": "prod", "deployment": "web", "container": "web", "pod": "web-7d9f8c6b5-abcde"}
PG = {"datname": "superset", "service": "postgres", "instance": "db-1:9187"}
WEB = {"namespace": "prod", "deployment": "web"}
PG_IDLE = ["postgres.activity", "postgres.terminate_idle"]
KDIAG = "kubernetes.diagnose"


def _fixture_params() -> list[Any]:
    files = sorted(FIXTURES.glob("*.body.json"))
    if not files:
        return [pytest.param(None, id="fixtures-missing")]
    return [pytest.param(f, id=f.name.removesuffix(".body.json")) for f in files]


def _alerts(body: Path) -> list[Alert]:
    alerts = []
    for a in json.loads(body.read_text())["alerts"]:
        starts = datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00"))
        alerts.append(Alert(a["fingerprint"], a["status"], a["labels"], a["annotations"],
                            starts, a["startsAt"], generator_url=a.get("generatorURL", "")))
    return alerts


def _alert(labels: dict[str, str], status: Literal["firing", "resolved"] = "firing") -> Alert:
    starts = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    return Alert("0123456789abcdef", status, labels, {"summary": "s"}, starts, "2026-11-23T12:00:00Z")


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(default_pack_paths(), catalogue=default_registry(), targets=None).ruleset


def test_pack_is_shipped_one_file_per_concern() -> None:
    """default_pack_paths finds one file per runbook concern inside the package."""
    assert [p.stem for p in default_pack_paths()] == CONCERNS


@pytest.mark.parametrize("targets", [
    pytest.param(None, id="no-config"),
    pytest.param({"prod-cluster": "kubernetes", "compose": "docker", "main": "postgres", "cache": "redis"},
                 id="example-targets"),
])
def test_pack_loads_cleanly(targets: dict[str, str] | None) -> None:
    """The pack loads with the real catalogue, without errors, and without warnings given
    the example config's targets."""
    result = load_rules(default_pack_paths(), catalogue=default_registry(), targets=targets)
    assert result.warnings == []
    assert len(result.ruleset.rules) == 14


def test_pack_without_targets_warns_once_per_target_use() -> None:
    """With a config that defines no targets the pack still loads; each target use is a warning."""
    result = load_rules(default_pack_paths(), catalogue=default_registry(), targets={})
    assert result.warnings
    assert {w.message.split("'")[1] for w in result.warnings} == {"prod-cluster", "compose", "main", "cache"}


@pytest.mark.parametrize("body", _fixture_params())
def test_fixture_alerts_meet_expected_rules(pack: RuleSet, body: Path | None) -> None:
    """Every captured alert meets the rule for its alertname (none when resolved)."""
    if body is None:
        pytest.fail(f"Alertmanager fixtures not found in {FIXTURES} (shared/ must sit beside the repo)")
    index = RuleIndex(pack)
    for alert in _alerts(body):
        want = EXPECTED[alert.name] if alert.status == "firing" else None
        matched = [m.rule.name for m in index.match(alert, alert.starts_at)]
        assert matched == ([want] if want else []), (alert.name, alert.status)


@pytest.mark.parametrize("body", _fixture_params())
def test_rendered_params_validate(pack: RuleSet, body: Path | None) -> None:
    """For each captured alert, the matched rule's params render and pass the action's model."""
    if body is None:
        pytest.fail(f"Alertmanager fixtures not found in {FIXTURES}")
    registry, index = default_registry(), RuleIndex(pack)
    for alert in _alerts(body):
        for match in index.match(alert, alert.starts_at):
            for spec in (*match.rule.diagnose, *match.rule.actions):
                info = registry.info(spec.action)
                assert info is not None
                info.params.model_validate(spec.render_params(alert))


# alert labels -> (rule, priority, actions in order, approval asked, one rendered param to check)
RUNBOOK: list[Any] = [
    pytest.param({"alertname": "HighCPU", "severity": "critical", **K8S},
                 "high-cpu-scale-up", "P2", [KDIAG, "kubernetes.scale"], False,
                 ("kubernetes.scale", {**WEB, "replicas": "+2", "max": 10}),
                 id="cpu"),
    pytest.param({"alertname": "HighErrorRate", "severity": "warning", **K8S},
                 "high-error-rate-diagnose", "P2", [KDIAG, "notify.log"], False,
                 ("kubernetes.diagnose", {**WEB, "events": 20}),
                 id="error-rate"),
    pytest.param({"alertname": "HighErrorRateAfterRollout", "severity": "critical", **K8S},
                 "high-error-rate-after-rollout-undo", "P1", [KDIAG, "kubernetes.rollout_undo"],
                 True, ("kubernetes.rollout_undo", WEB),
                 id="error-rate-after-rollout"),
    pytest.param({"alertname": "PostgresSlowQueries", "severity": "warning", **PG},
                 "postgres-slow-queries-cancel", "P3", ["postgres.activity", "postgres.cancel_long_queries"],
                 False, ("postgres.cancel_long_queries", {"running_for": "5m", "database": "superset",
                                                          "grace": "30s", "max_queries": 5}),
                 id="slow-queries"),
    pytest.param({"alertname": "PostgresLongRunningQueries", **PG},
                 "postgres-slow-queries-cancel", "P3", ["postgres.activity", "postgres.cancel_long_queries"],
                 False, ("postgres.activity", {"database": "superset"}), id="long-running-queries"),
    pytest.param({"alertname": "PostgresTooManyConnections", "severity": "critical", **PG},
                 "postgres-connections-terminate-idle", "P1", PG_IDLE,
                 False, ("postgres.terminate_idle", {"idle_for": "10m", "database": "superset",
                                                     "max_sessions": 20}),
                 id="too-many-connections"),
    pytest.param({"alertname": "PostgresConnectionPoolExhausted", **PG},
                 "postgres-connections-terminate-idle", "P1", PG_IDLE,
                 False, ("postgres.activity", {"database": "superset"}), id="pool-exhausted"),
    pytest.param({"alertname": "ContainerOOMKilled", "severity": "critical", **K8S},
                 "oom-killed-rollout-restart", "P2", [KDIAG, "kubernetes.rollout_restart"],
                 False, ("kubernetes.rollout_restart", WEB),
                 id="oom-kubernetes"),
    pytest.param({"alertname": "ContainerOOMKilled", "name": "superset-worker-1"},
                 "oom-killed-docker-restart", "P2", ["docker.diagnose", "docker.restart"], False,
                 ("docker.restart", {"container": "superset-worker-1", "timeout": 10}), id="oom-docker"),
    pytest.param({"alertname": "ContainerOOMKilledRepeatedly", **K8S},
                 "oom-killed-repeatedly-raise-memory", "P2",
                 [KDIAG, "kubernetes.set_memory_limit"], True,
                 ("kubernetes.set_memory_limit", {**WEB, "container": "web", "factor": 1.5,
                                                  "max": "4Gi"}),
                 id="oom-repeated"),
    pytest.param({"alertname": "TargetDown", "name": "superset-web-1", "job": "compose"},
                 "container-down-docker-restart", "P1", ["docker.diagnose", "docker.restart"], False,
                 ("docker.diagnose", {"container": "superset-web-1", "log_lines": 50}), id="container-down"),
    pytest.param({"alertname": "TargetDown", "job": "web", **K8S},
                 "pod-down-rollout-restart", "P1", [KDIAG, "kubernetes.rollout_restart"], False,
                 ("kubernetes.rollout_restart", WEB), id="pod-down"),
    pytest.param({"alertname": "KubePodCrashLooping", **K8S},
                 "pod-down-rollout-restart", "P1", [KDIAG, "kubernetes.rollout_restart"], False,
                 ("kubernetes.diagnose", {**WEB, "events": 20}),
                 id="crash-looping"),
    pytest.param({"alertname": "HighLatency", "service": "web", **K8S},
                 "high-latency-scale-up", "P2", [KDIAG, "kubernetes.scale"], False,
                 ("kubernetes.scale", {**WEB, "replicas": "+2", "max": 10}),
                 id="latency"),
    pytest.param({"alertname": "RedisMemoryHigh", "service": "redis", "instance": "redis-1:9121"},
                 "redis-memory-high-flush", "P3", ["redis.diagnose", "redis.flushdb"], True,
                 ("redis.flushdb", {"db": 0}), id="redis-memory"),
    pytest.param({"alertname": "CeleryQueueBacklog", "queue": "reports", "namespace": "prod",
                  "deployment": "superset-worker"},
                 "queue-backlog-scale-workers", "P3", [KDIAG, "kubernetes.scale"], False,
                 ("kubernetes.scale", {"namespace": "prod", "deployment": "superset-worker", "replicas": "+2",
                                       "max": 20}),
                 id="queue-backlog"),
    pytest.param({"alertname": "DiskAlmostFull", "instance": "node-1:9100", "mountpoint": "/var",
                  "severity": "warning"},
                 "disk-almost-full-notify", "P2", ["notify.log", "notify.slack"], False,
                 ("notify.slack", {"notifier": "oncall", "severity": "warning",
                                   "title": "Disk almost full: node-1:9100 /var",
                                   "text": "/var on node-1:9100 has under 10% free. remediator deletes "
                                           "nothing: free space or grow the volume."}),
                 id="disk"),
]


@pytest.mark.parametrize(("labels", "rule", "priority", "actions", "approval", "param"), RUNBOOK)
def test_runbook_alert_gets_its_decision(pack: RuleSet, labels: dict[str, str], rule: str, priority: str,
                                         actions: list[str], approval: bool, param: tuple[str, Any]) -> None:
    """Each runbook alert meets exactly its rule, with the runbook's priority, steps and approval."""
    registry = default_registry()
    alert = _alert(labels)
    (match,) = RuleIndex(pack).match(alert, alert.starts_at)
    assert match.rule.name == rule
    got_priority = classify(alert, match.rule.priority, PriorityPolicy())
    assert got_priority.value == priority
    specs = [*match.rule.diagnose, *match.rule.actions]
    assert [s.action for s in specs] == actions
    asked = False
    for spec in match.rule.actions:
        info = registry.info(spec.action)
        action = registry.get(spec.action)
        assert info is not None
        assert action is not None
        parsed = action.parse_params(spec.render_params(alert))
        asked |= action.approval_always or match.rule.approval_required(
            got_priority, destructive=action.is_destructive(parsed))
    assert asked is approval
    name, want = param
    (spec,) = [s for s in specs if s.action == name]
    assert spec.render_params(alert) == want
    assert not RuleIndex(pack).match(_alert(labels, status="resolved"), alert.starts_at)


@pytest.mark.parametrize("labels", [
    pytest.param({"alertname": "HighCPU", "namespace": "prod"}, id="cpu-without-deployment"),
    pytest.param({"alertname": "TargetDown", "job": "node"}, id="target-down-neither-docker-nor-kubernetes"),
    pytest.param({"alertname": "RedisMemoryHigh", "service": "sessions"}, id="redis-other-service"),
    pytest.param({"alertname": "PostgresTooManyConnections"}, id="connections-without-database"),
    pytest.param({"alertname": "DiskAlmostFull", "instance": "node-1:9100"}, id="disk-without-mountpoint"),
])
def test_alerts_the_pack_cannot_act_on_meet_no_rule(pack: RuleSet, labels: dict[str, str]) -> None:
    """An alert lacking the labels a rule's action needs meets no rule (nothing half-rendered)."""
    alert = _alert(labels)
    assert RuleIndex(pack).match(alert, alert.starts_at) == []


def test_every_rule_is_described_bounded_and_verified(pack: RuleSet) -> None:
    """Each pack rule says what it is for and is bounded: description, priority, cooldown,
    limit, verify, an explicit approval, and no rule-level ``for``."""
    for rule in pack.rules:
        assert rule.description, rule.name
        assert rule.priority is not None, rule.name
        assert rule.cooldown is not None, rule.name
        assert rule.cooldown > timedelta(0), rule.name
        assert rule.limit is not None, rule.name
        assert rule.verify is not None, rule.name
        assert rule.approval is not None, rule.name
        assert rule.for_ == timedelta(0), rule.name


def test_no_rule_deletes_data_without_a_human(pack: RuleSet) -> None:
    """Flushes, rollbacks and memory changes always wait for approval; disk is notify-only."""
    registry = default_registry()
    for rule in pack.rules:
        for spec in rule.actions:
            action = registry.get(spec.action)
            assert action is not None
            if spec.action in ("redis.flushdb", "kubernetes.rollout_undo", "kubernetes.set_memory_limit"):
                assert rule.approval_required(rule.priority or PriorityPolicy().default, destructive=True)
    (disk,) = [r for r in pack.rules if r.name == "disk-almost-full-notify"]
    assert {s.action.split(".")[0] for s in disk.actions} == {"notify"}


def test_pack_points_editors_at_the_schema() -> None:
    """Every pack file's yaml-language-server modeline names the shipped schema file."""
    for path in default_pack_paths():
        assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../rule-file.schema.json"
        assert (path.parent / "../rule-file.schema.json").resolve().is_file()


def test_now_is_irrelevant_without_for(pack: RuleSet) -> None:
    """Matching the pack does not depend on the clock (fixtures' startsAt are recent)."""
    (alert, _) = _alerts(FIXTURES / "01_firing_group_HighCPU_2_alerts.body.json")
    index = RuleIndex(pack)
    assert index.match(alert, datetime(2000, 1, 1, tzinfo=UTC)) == index.match(
        alert, datetime.now(UTC)
    )
