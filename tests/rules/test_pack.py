"""The shipped rule pack: it loads, and every captured Alertmanager alert meets the right rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediations.registry import default_registry
from rules.alert import Alert
from rules.engine import RuleIndex
from rules.loader import default_pack_paths, load_rules
from rules.model import RuleSet

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "alertmanager"

EXPECTED = {  # alertname -> the pack rule a firing alert of that name meets (None: no rule)
    "HighCPU": "high-cpu-scale-up",
    "HighErrorRate": "high-error-rate-rollback",
    "PostgresSlowQueries": "postgres-slow-queries-cancel",
    "ContainerOOMKilled": "container-oom-killed-raise-memory",
    "RedisMemoryHigh": None,
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
    return load_rules(default_pack_paths(), catalogue=default_registry(), targets={}).ruleset


def test_pack_is_shipped() -> None:
    """default_pack_paths finds core.yaml inside the package."""
    assert [p.name for p in default_pack_paths()] == ["core.yaml"]


@pytest.mark.parametrize("targets", [pytest.param(None, id="no-config"),
                                     pytest.param({}, id="empty-config")])
def test_pack_loads_cleanly(targets: dict[str, str] | None) -> None:
    """The pack loads with the real catalogue, without errors or warnings."""
    result = load_rules(default_pack_paths(), catalogue=default_registry(), targets=targets)
    assert result.warnings == []
    assert len(result.ruleset.rules) == 4


@pytest.mark.parametrize("body", _fixture_params())
def test_fixture_alerts_meet_expected_rules(pack: RuleSet, body: Path | None) -> None:
    """Every captured alert meets the rule for its alertname (none when resolved or unknown)."""
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


def test_fixture_01_is_actionable_at_first_notification(pack: RuleSet) -> None:
    """HighCPU acts on the first notification: no ``for`` keeps it waiting."""
    (alert, _) = _alerts(FIXTURES / "01_firing_group_HighCPU_2_alerts.body.json")
    (match,) = RuleIndex(pack).match(alert, alert.starts_at + timedelta(seconds=1))
    assert not match.waiting


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in EXPECTED.values() if n])
def test_rules_are_complete(pack: RuleSet, name: str) -> None:
    """Each pack rule says what it is for and is bounded: description, cooldown, limit, verify."""
    (rule,) = [r for r in pack.rules if r.name == name]
    assert rule.description
    assert rule.cooldown is not None
    assert rule.cooldown > timedelta(0)
    assert rule.limit is not None
    assert rule.verify is not None
    assert rule.for_ == timedelta(0)


def test_pack_points_editors_at_the_schema() -> None:
    """The pack's yaml-language-server modeline names the shipped schema file."""
    first = default_pack_paths()[0].read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../rule-file.schema.json"
    assert (default_pack_paths()[0].parent / "../rule-file.schema.json").resolve().is_file()


def test_now_is_irrelevant_without_for(pack: RuleSet) -> None:
    """Matching the pack does not depend on the clock (fixtures' startsAt are recent)."""
    (alert, _) = _alerts(FIXTURES / "01_firing_group_HighCPU_2_alerts.body.json")
    index = RuleIndex(pack)
    assert index.match(alert, datetime(2000, 1, 1, tzinfo=UTC)) == index.match(
        alert, datetime.now(UTC)
    )
