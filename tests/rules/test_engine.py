"""The rule index: same answers as checking every rule, in rule order, with ``for`` and status."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rules.alert import Alert, AlertStatus
from rules.engine import RuleIndex
from rules.model import Rule, RuleSet

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def rule(name: str, *match: str, **extra: Any) -> Rule:
    data = {"name": name, "match": list(match),
            "actions": [{"action": "notify.log", "params": {"text": "x"}}], **extra}
    return Rule.model_validate(data)


def alert(status: AlertStatus = "firing", age: timedelta = timedelta(hours=1), /,
          **labels: str) -> Alert:
    return Alert(
        fingerprint="0123456789abcdef",
        status=status,
        labels=labels,
        annotations={},
        starts_at=NOW - age,
        starts_at_raw=(NOW - age).isoformat(),
    )


_MATCHERS = [
    *(f'alertname="A{i}"' for i in range(10)),
    'alertname=~"A[0-4]"', 'alertname!="A1"', 'alertname!~"A[5-9]"',
    'env="prod"', 'env="staging"', 'env!="prod"', 'env=~"prod|staging"', 'env!~"dev"',
    'env=""', 'team="db"', 'team=~".+"', 'team!=""', 'severity="critical"',
]


def _generated_rules(rng: random.Random, count: int) -> list[Rule]:
    rules = []
    for i in range(count):
        match = rng.sample(_MATCHERS, rng.randint(1, 3))
        status = rng.choice(["firing", "resolved", "any"])
        rules.append(rule(f"r{i}", *match, status=status))
    return rules


def _generated_alerts(rng: random.Random, count: int) -> list[Alert]:
    alerts = []
    for _ in range(count):
        labels = {"alertname": rng.choice([f"A{i}" for i in range(12)])}
        for name, values in (("env", ["prod", "staging", "dev"]), ("team", ["db", "web"]),
                             ("severity", ["critical", "warning"])):
            if rng.random() < 0.7:
                labels[name] = rng.choice(values)
        statuses: list[AlertStatus] = ["firing", "resolved"]
        alerts.append(alert(rng.choice(statuses), **labels))
    return alerts


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in (1, 2, 3)])
def test_index_agrees_with_brute_force(seed: int) -> None:
    """Over a few hundred generated rules the index returns exactly what checking all returns."""
    rng = random.Random(seed)
    rules = _generated_rules(rng, 300)
    index = RuleIndex(RuleSet(rules=tuple(rules)))
    for a in _generated_alerts(rng, 200):
        expected = [i for i, r in enumerate(rules) if r.matches(a)]
        assert [m.position for m in index.match(a, NOW)] == expected, a.labels


def test_rule_order_is_preserved_across_index_buckets() -> None:
    """Matches come in rule order whichever label each rule is indexed under."""
    rules = [
        rule("by-team", 'team="db"'),
        rule("unindexed", 'alertname=~"Pg.*"'),
        rule("by-alertname", 'alertname="PgDown"', 'team="db"'),
        rule("empty-equality-unindexed", 'env=""'),
        rule("by-env", 'env="prod"'),
        rule("other", 'alertname="Other"'),
    ]
    index = RuleIndex(RuleSet(rules=tuple(rules)))
    matched = index.match(alert(alertname="PgDown", team="db"), NOW)
    assert [m.rule.name for m in matched] == [
        "by-team", "unindexed", "by-alertname", "empty-equality-unindexed",
    ]


@pytest.mark.parametrize(
    ("match", "labels", "hit"),
    [
        pytest.param(['alertname=~"High.*"'], {"alertname": "HighCPU"}, True, id="regex-only"),
        pytest.param(['env!="prod"'], {"alertname": "X"}, True, id="negative-only-missing-label"),
        pytest.param(['env=""'], {"alertname": "X"}, True, id="empty-equality"),
        pytest.param(['env=""'], {"alertname": "X", "env": "prod"}, False, id="empty-eq-miss"),
    ],
)
def test_unindexed_rules_are_checked_for_every_alert(
    match: list[str], labels: dict[str, str], hit: bool
) -> None:
    """Rules with no usable equality matcher are candidates for every alert."""
    index = RuleIndex(RuleSet(rules=(rule("r", *match),)))
    assert bool(index.match(alert(**labels), NOW)) is hit


@pytest.mark.parametrize(
    ("rule_status", "alert_status", "hit"),
    [
        pytest.param("firing", "firing", True, id="firing-firing"),
        pytest.param("firing", "resolved", False, id="firing-resolved"),
        pytest.param("resolved", "resolved", True, id="resolved-resolved"),
        pytest.param("resolved", "firing", False, id="resolved-firing"),
        pytest.param("any", "firing", True, id="any-firing"),
        pytest.param("any", "resolved", True, id="any-resolved"),
    ],
)
def test_status(rule_status: str, alert_status: AlertStatus, hit: bool) -> None:
    """``status`` selects firing, resolved or any notifications (default firing)."""
    index = RuleIndex(RuleSet(rules=(rule("r", 'alertname="A"', status=rule_status),)))
    assert bool(index.match(alert(alert_status, alertname="A"), NOW)) is hit


def test_status_defaults_to_firing() -> None:
    """A rule without ``status`` ignores resolved notifications."""
    assert rule("r", 'alertname="A"').status == "firing"


@pytest.mark.parametrize(
    ("for_", "age", "status", "waiting"),
    [
        pytest.param("0", timedelta(0), "firing", False, id="no-for"),
        pytest.param("5m", timedelta(minutes=1), "firing", True, id="too-young"),
        pytest.param("5m", timedelta(minutes=5), "firing", False, id="exactly-old-enough"),
        pytest.param("5m", timedelta(hours=2), "firing", False, id="old-enough"),
        pytest.param("5m", timedelta(minutes=1), "resolved", False, id="resolved-never-waits"),
    ],
)
def test_for_waiting(for_: str, age: timedelta, status: AlertStatus, waiting: bool) -> None:
    """A match is ``waiting`` while now - startsAt is below ``for`` (firing alerts only)."""
    index = RuleIndex(RuleSet(rules=(rule("r", 'alertname="A"', status="any", **{"for": for_}),)))
    (m,) = index.match(alert(status, age, alertname="A"), NOW)
    assert m.waiting is waiting


def test_len_and_ruleset() -> None:
    """The index exposes its rule set and size."""
    ruleset = RuleSet(rules=(rule("a", 'x="1"'), rule("b", 'x="2"')))
    index = RuleIndex(ruleset)
    assert len(index) == 2
    assert index.ruleset is ruleset
