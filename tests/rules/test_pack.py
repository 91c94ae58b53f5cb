"""The shipped rule pack: it loads, every captured alert meets the right rule, every rule
is bounded, and the pack acts live as the runbooks ask (tests/rules/pack_live.test.yaml,
run here through ``remediator rules test``; the per-file dry-run cases are
rules/packs/*.test.yaml, run by test_pack_rule_tests.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from receiver.cli.main import main
from remediations.registry import default_registry
from rules.alert import Alert
from rules.engine import RuleIndex
from rules.loader import default_pack_paths, load_rules
from rules.model import RuleSet
from rules.priority import PriorityPolicy
from tests.support.paths import ALERTMANAGER

FIXTURES = ALERTMANAGER

CONCERNS = ["availability", "cpu", "disk", "errors", "health", "latency", "memory", "oom", "pipelines",
            "postgres-availability", "postgres-connections", "postgres-queries", "queues", "redis",
            "superset", "workers"]
EXAMPLE_TARGETS = {"prod-cluster": "kubernetes", "compose": "docker", "main": "postgres", "cache": "redis",
                   "web": "http", "superset": "http", "airflow": "http", "celery": "celery",
                   "argocd": "argocd"}

EXPECTED = {  # alertname of a captured alert -> the pack rule a firing alert of that name meets
    "HighCPU": "high-cpu-scale-up",
    "HighErrorRate": "high-error-rate-diagnose",
    "PostgresSlowQueries": "postgres-slow-queries-cancel",
    "ContainerOOMKilled": "oom-killed-rollout-restart",
    "RedisMemoryHigh": "redis-memory-high-flush",
}



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


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(default_pack_paths(), catalogue=default_registry(), targets=None).ruleset


def test_pack_is_shipped_one_file_per_concern() -> None:
    """default_pack_paths finds one file per runbook concern inside the package."""
    assert [p.stem for p in default_pack_paths()] == CONCERNS


@pytest.mark.parametrize("targets", [
    pytest.param(None, id="no-config"),
    pytest.param(EXAMPLE_TARGETS, id="example-targets"),
])
def test_pack_loads_cleanly(targets: dict[str, str] | None) -> None:
    """The pack loads with the real catalogue, without errors, and without warnings given
    the example config's targets."""
    result = load_rules(default_pack_paths(), catalogue=default_registry(), targets=targets)
    assert result.warnings == []
    assert len(result.ruleset.rules) == 37


def test_pack_without_targets_warns_once_per_target_use() -> None:
    """With a config that defines no targets the pack still loads; each target use is a warning."""
    result = load_rules(default_pack_paths(), catalogue=default_registry(), targets={})
    assert result.warnings
    assert {w.message.split("'")[1] for w in result.warnings} == set(EXAMPLE_TARGETS)


@pytest.mark.parametrize("body", _fixture_params())
def test_fixture_alerts_meet_expected_rules(pack: RuleSet, body: Path | None) -> None:
    """Every captured alert meets the rule for its alertname (none when resolved)."""
    if body is None:
        pytest.fail(f"Alertmanager fixtures not found in {FIXTURES}")
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
            for spec in (*match.rule.diagnose, *match.rule.all_actions):
                info = registry.info(spec.action)
                assert info is not None
                info.params.model_validate(spec.render_params(alert))


def test_every_rule_is_described_bounded_and_verified(pack: RuleSet) -> None:
    """Each pack rule says what it is for and is bounded: description, priority, cooldown,
    limit, verify, an explicit approval, and no rule-level ``for``."""
    for rule in pack.rules:
        assert rule.description, rule.name
        assert rule.priority is not None, rule.name
        assert rule.cooldown is not None, rule.name
        assert rule.cooldown > timedelta(0), rule.name
        assert rule.limit is not None, rule.name
        assert all(step.verify is not None for step in rule.steps), rule.name
        assert rule.steps[-1].otherwise == "escalate", rule.name  # and then a human hears of it
        assert rule.approval is not None, rule.name
        assert rule.for_ == timedelta(0), rule.name


def test_no_rule_deletes_data_without_a_human(pack: RuleSet) -> None:
    """Flushes, rollbacks and memory changes always wait for approval; disk is notify-only."""
    registry = default_registry()
    for rule in pack.rules:
        for step in rule.steps:
            for spec in step.actions:
                action = registry.get(spec.action)
                assert action is not None
                if spec.action in ("redis.flushdb", "kubernetes.rollout_undo", "kubernetes.set_memory_limit"):
                    level = rule.priority or PriorityPolicy().default_level
                    assert rule.approval_required(level, destructive=True, rung=step.index)
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


def test_pack_live_rule_tests_pass(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The pack as it acts live with the example config's targets (tests/rules/pack_live.test.yaml,
    through ``remediator rules test``): what runs on its own, what waits for a human,
    cooldowns, re-sends, allow-lists."""
    for name in ("PACK_TEST_PG_DSN", "PACK_TEST_CACHE_URL", "PACK_TEST_SLACK_URL", "PACK_TEST_ARGOCD_TOKEN"):
        monkeypatch.setenv(name, f"set-by-{name.lower()}")
    code = main(["rules", "test", str(Path(__file__).parent / "pack_live.test.yaml")])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.splitlines()[-1] == "16 cases, 0 failed"
