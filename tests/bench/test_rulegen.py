"""Generated rules load as serve loads them, and each generated alert finds its rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.payloads import fixture_bodies, render, request_id, templates
from bench.rulegen import rule_yaml, storm_rule_yaml, write_rules
from receiver.flow.payload import parse_webhook
from remediations.registry import default_registry
from rules.engine import RuleIndex
from rules.loader import default_pack_paths, load_rules
from rules.matchers import MatchType


def test_generated_rules_load_with_the_shipped_pack_without_problems(tmp_path: Path) -> None:
    (tmp_path / "generated.yaml").write_text(rule_yaml(40))
    pack = load_rules(default_pack_paths(), catalogue=default_registry()).ruleset.rules
    result = load_rules([*default_pack_paths(), tmp_path / "generated.yaml"], catalogue=default_registry())
    assert len(result.ruleset.rules) == len(pack) + 40
    assert result.warnings == []
    names = [r.name for r in result.ruleset.rules]
    assert len(set(names)) == len(names)


def test_some_generated_rules_carry_regex_matchers(tmp_path: Path) -> None:
    (tmp_path / "generated.yaml").write_text(rule_yaml(8))
    rules = load_rules([tmp_path / "generated.yaml"], catalogue=default_registry()).ruleset.rules
    with_regex = [r for r in rules if any(m.type is MatchType.REGEX for m in r.match if m.name != "severity")]
    assert 0 < len(with_regex) < len(rules)


def test_every_generated_alert_matches_exactly_its_rule(tmp_path: Path) -> None:
    (tmp_path / "generated.yaml").write_text(rule_yaml(20))
    index = RuleIndex(load_rules([*default_pack_paths(), tmp_path / "generated.yaml"],
                                 catalogue=default_registry()).ruleset)
    now = datetime.now(UTC)
    for n, template in enumerate(templates(fixture_bodies(), alerts_per_request=10, rule_count=20, count=8)):
        for alert in parse_webhook(render(template, request_id(0, n)).encode())[1]:
            if alert.name.startswith("BenchAlert") and alert.status == "firing":  # rules default to firing
                matched = [m.rule.name for m in index.match(alert, now)]
                assert matched == [f"bench-rule-{int(alert.name[10:]):05d}"]


def test_generated_rules_are_a_folder_of_files_of_100(tmp_path: Path) -> None:
    folder = write_rules(tmp_path / "generated", 250)
    assert sorted(p.name for p in folder.iterdir()) == ["generated-0000.yaml", "generated-0001.yaml",
                                                       "generated-0002.yaml"]
    names = [r.name for r in load_rules([folder], catalogue=default_registry()).ruleset.rules]
    assert names == [f"bench-rule-{i:05d}" for i in range(250)]


def test_the_storm_rule_loads(tmp_path: Path) -> None:
    (tmp_path / "storm.yaml").write_text(storm_rule_yaml())
    (rule,) = load_rules([tmp_path / "storm.yaml"], catalogue=default_registry()).ruleset.rules
    assert rule.name == "bench-storm"
    assert rule.actions[0].params["text"].startswith("storm on")
