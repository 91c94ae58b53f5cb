"""Priority classification: rule override, severity map, default; response targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rules.alert import Alert
from rules.priority import Priority, PriorityPolicy, classify

P1, P2, P3, P4 = Priority.P1, Priority.P2, Priority.P3, Priority.P4


def alert(**labels: str) -> Alert:
    return Alert(
        fingerprint="f" * 16,
        status="firing",
        labels={"alertname": "X", **labels},
        annotations={},
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        starts_at_raw="2026-01-01T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("labels", "rule_priority", "expected"),
    [
        pytest.param({"severity": "critical"}, None, P1, id="critical"),
        pytest.param({"severity": "high"}, None, P2, id="high"),
        pytest.param({"severity": "error"}, None, P2, id="error"),
        pytest.param({"severity": "warning"}, None, P3, id="warning"),
        pytest.param({"severity": "info"}, None, P4, id="info"),
        pytest.param({"severity": "CRITICAL"}, None, P1, id="case-insensitive"),
        pytest.param({"severity": "page"}, None, P3, id="unknown-severity-default"),
        pytest.param({}, None, P3, id="no-severity-default"),
        pytest.param({"severity": "info"}, P1, P1, id="rule-overrides-up"),
        pytest.param({"severity": "critical"}, P4, P4, id="rule-overrides-down"),
    ],
)
def test_default_policy(labels: dict[str, str], rule_priority: Priority | None,
                        expected: Priority) -> None:
    """With the default policy the rule's priority wins, then the severity map, then P3."""
    assert classify(alert(**labels), rule_priority, PriorityPolicy()) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"level": "sev1"}, P1, id="custom-label-and-map"),
        pytest.param({"level": "sev2"}, P2, id="custom-map-second"),
        pytest.param({"severity": "critical"}, P4, id="other-label-ignored"),
        pytest.param({}, P4, id="custom-default"),
    ],
)
def test_custom_policy(labels: dict[str, str], expected: Priority) -> None:
    """A configured label, map and default replace the built-in ones."""
    policy = PriorityPolicy(map={"sev1": P1, "sev2": P2}, default=P4, label="level")
    assert classify(alert(**labels), None, policy) == expected


@pytest.mark.parametrize(
    ("priority", "target"),
    [
        pytest.param(P1, timedelta(minutes=15), id="P1-15m"),
        pytest.param(P2, timedelta(hours=1), id="P2-1h"),
        pytest.param(P3, timedelta(hours=4), id="P3-4h"),
        pytest.param(P4, timedelta(hours=24), id="P4-24h"),
    ],
)
def test_default_response_targets(priority: Priority, target: timedelta) -> None:
    """Each priority carries the runbooks' response target."""
    assert PriorityPolicy().response_target(priority) == target


@pytest.mark.parametrize(
    ("priority", "target"),
    [
        pytest.param(P1, timedelta(minutes=5), id="overridden"),
        pytest.param(P4, timedelta(hours=24), id="missing-falls-back-to-default"),
    ],
)
def test_custom_response_targets(priority: Priority, target: timedelta) -> None:
    """Configured response targets override; a priority left out keeps its default."""
    policy = PriorityPolicy(response_targets={P1: timedelta(minutes=5)})
    assert policy.response_target(priority) == target
